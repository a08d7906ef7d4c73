"""Signed ledger checkpoints and purge certificates: for privacy officers and admins."""

from flask.views import MethodView

from schemas.checkpoints import (
    CheckpointCreateSchema,
    CheckpointDocumentSchema,
    CheckpointPageSchema,
    CheckpointVerificationSchema,
    PurgeCertificatePageSchema,
    PurgeCertificateQueryArgsSchema,
    SigningKeyListSchema,
)
from schemas.common import PageArgsSchema
from server.api.context import Blueprint, caller, get_db, requires, runtime
from server.services import audit, checkpoints, keyring, retention

blp = Blueprint(
    "checkpoints",
    __name__,
    url_prefix="/api/v1/audit",
    description="Signed ledger checkpoints and retention purge certificates",
)


def _attachment(checkpoint_id: int) -> dict[str, str]:
    name = f"doorstep-ledger-checkpoint-{checkpoint_id}.json"
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@blp.route("/checkpoints")
class CheckpointViews(MethodView):
    @requires("privacy_officer", "admin")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, CheckpointPageSchema)
    def get(self, args):
        """Signed checkpoints of the ledger head, oldest first"""
        return checkpoints.list_checkpoints(get_db(), args["after"], args["limit"])

    @requires("privacy_officer", "admin")
    @blp.arguments(CheckpointCreateSchema)
    @blp.response(201, CheckpointDocumentSchema)
    def post(self, data):
        """Sign the ledger head now; returns the checkpoint file to keep elsewhere"""
        document = checkpoints.take_checkpoint(get_db(), runtime(), caller(), data.get("reason"))
        return document, 201, _attachment(document["id"])


@blp.route("/checkpoints/<int:checkpoint_id>")
class CheckpointByIdViews(MethodView):
    @requires("privacy_officer", "admin")
    @blp.response(200, CheckpointDocumentSchema)
    def get(self, checkpoint_id):
        """One checkpoint as an exportable JSON file, with the public key that verifies it"""
        document = checkpoints.get_checkpoint_document(get_db(), runtime(), checkpoint_id)
        return document, 200, _attachment(checkpoint_id)


@blp.route("/verify-checkpoint")
class CheckpointVerificationViews(MethodView):
    @requires("privacy_officer", "admin")
    @blp.arguments(CheckpointDocumentSchema)
    @blp.response(200, CheckpointVerificationSchema)
    def post(self, document):
        """Check an exported checkpoint: its signature, the chain, its entry, the tail"""
        return audit.verify_against_checkpoint(get_db(), runtime(), document)


@blp.route("/purge-certificates")
class PurgeCertificateViews(MethodView):
    @requires("privacy_officer", "admin")
    @blp.arguments(PurgeCertificateQueryArgsSchema, location="query")
    @blp.response(200, PurgeCertificatePageSchema)
    def get(self, args):
        """Signed certificates of retention purges: kind, rule, cutoff, counts"""
        return retention.list_certificates(get_db(), args["after"], args["limit"], args.get("kind"))


@blp.route("/keys")
class SigningKeyViews(MethodView):
    @requires("privacy_officer", "admin")
    @blp.response(200, SigningKeyListSchema)
    def get(self):
        """The keyring: every public key that signed checkpoints and certificates"""
        return keyring.list_keys(get_db(), runtime())
