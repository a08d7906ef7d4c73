"""The legal evidence pack of a case: a BagIt bag, built for a court or an auditor."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from flask import Response, send_file
from flask.views import MethodView

from schemas.common import ErrorSchema
from schemas.evidence import EvidencePackRequestSchema
from server.api.context import Blueprint, caller, get_db, requires, runtime
from server.services import evidence_pack

blp = Blueprint(
    "evidence", __name__, url_prefix="/api/v1", description="Legal evidence packs (BagIt)"
)


def pack_response(built: evidence_pack.BuiltPack, archive: Path) -> Response:
    """The built pack as a tar download (also the console's)."""
    # The open handle outlives the deleted work directory (POSIX), so nothing stays on disk.
    response = send_file(
        archive.open("rb"),
        mimetype="application/x-tar",
        as_attachment=True,
        download_name=f"{built.pack_id}.tar",
    )
    response.headers["X-Evidence-Pack-Id"] = built.pack_id
    response.headers["X-Evidence-Pack-Tagmanifest-Sha256"] = built.tagmanifest_sha256
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/cases/<int:case_id>/evidence-pack")
class EvidencePackViews(MethodView):
    @requires("privacy_officer")
    @blp.arguments(EvidencePackRequestSchema)
    @blp.response(
        200,
        content_type="application/x-tar",
        description="the pack: one directory, a BagIt bag (RFC 8493), as an uncompressed tar",
    )
    @blp.alt_response(404, schema=ErrorSchema, description="no such case")
    def post(self, body, case_id):
        """Build a case's evidence pack; ledgered (legal_escalation), puts the case on legal hold"""
        work = Path(tempfile.mkdtemp(prefix="doorstep-evidence-"))
        try:
            built = evidence_pack.build_pack(
                get_db(), runtime(), caller(), case_id, body["reason"], work
            )
            return pack_response(built, evidence_pack.archive_pack(built))
        finally:
            shutil.rmtree(work, ignore_errors=True)
