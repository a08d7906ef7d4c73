"""Attachments: content-addressed blobs, whole or in resumable chunks (agents upload)."""

from flask import Response, request
from flask.views import MethodView

from schemas.attachments import (
    AttachmentSchema,
    UploadCreateSchema,
    UploadOffsetHeaderSchema,
    UploadSchema,
)
from schemas.common import ErrorSchema
from server.api.context import Blueprint, caller, get_db, requires, runtime
from server.config import DEFAULTS
from server.errors import UnsupportedMediaType
from server.services import attachment_downloads, attachments

blp = Blueprint(
    "attachments", __name__, url_prefix="/api/v1", description="Attachments (signatures, photos)"
)

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_BLOB_BODY = {
    "required": True,
    "description": "the blob's bytes; Content-Type is one of the allowed attachment types",
    "content": {t: _BINARY for t in DEFAULTS["BLOB_CONTENT_TYPES"]},
}
_CHUNK_TYPES = ("application/offset+octet-stream", "application/octet-stream")
_CHUNK_BODY = {
    "required": True,
    "description": "the next bytes of the blob, starting at Upload-Offset",
    "content": {t: _BINARY for t in _CHUNK_TYPES},
}
_UPLOAD_OFFSET = {
    "Upload-Offset": {"schema": {"type": "integer"}, "description": "the resume point"}
}


def _upload_offset(state: dict) -> dict[str, str]:
    return {"Upload-Offset": str(state["received"])}


@blp.route("/attachments/<sha256:sha256>")
class AttachmentByHashViews(MethodView):
    @requires("agent")
    @blp.doc(requestBody=_BLOB_BODY)
    @blp.response(201, AttachmentSchema)
    @blp.alt_response(
        200, schema=AttachmentSchema, description="you already uploaded it", success=True
    )
    @blp.alt_response(
        409, schema=ErrorSchema, description="blob_quota_exceeded: push the records first"
    )
    @blp.alt_response(413, schema=ErrorSchema, description="too large: use a chunked upload")
    @blp.alt_response(415, schema=ErrorSchema, description="content type not allowed")
    @blp.alt_response(422, schema=ErrorSchema, description="hash_mismatch, or a bad SHA-256")
    def put(self, sha256):
        """Upload a small blob whole; the server checks its SHA-256; twice is a no-op"""
        blob, created = attachments.put_blob(
            get_db(), runtime(), caller(), sha256, request.mimetype, request.get_data()
        )
        return blob, 201 if created else 200

    @requires("agent", "dispatcher")
    @blp.response(200, AttachmentSchema)
    @blp.alt_response(
        404,
        schema=ErrorSchema,
        description="not yours (agents), referenced by no record (staff), or unknown",
    )
    def get(self, sha256):
        """A blob's metadata, or how far your upload got (never the bytes)"""
        return attachments.blob_status(get_db(), caller(), sha256)


@blp.route("/attachments/<sha256:sha256>/content")
class AttachmentContentViews(MethodView):
    @requires("dispatcher")
    @blp.response(
        200,
        content_type="application/octet-stream",
        description="the blob's bytes, under its own Content-Type (a photo, a signature image)",
    )
    @blp.alt_response(404, schema=ErrorSchema, description="referenced by no record, or unknown")
    def get(self, sha256):
        """An attachment's bytes; each download is ledgered (which attachment, whose)"""
        rt = runtime()
        download = attachment_downloads.open_download(get_db(), rt, caller(), sha256)
        return Response(
            attachment_downloads.stream(rt, download),
            mimetype=download.content_type,
            headers={
                "Content-Length": str(download.size),
                "Content-Disposition": f'attachment; filename="{sha256}"',
                "Cache-Control": "no-store",
            },
        )


@blp.route("/attachments/<sha256:sha256>/uploads")
class AttachmentUploadViews(MethodView):
    @requires("agent")
    @blp.arguments(UploadCreateSchema)
    @blp.response(201, UploadSchema)
    @blp.alt_response(
        200,
        schema=UploadSchema,
        description="you already uploaded it, or this device's unfinished upload to resume",
        success=True,
    )
    @blp.alt_response(
        409, schema=ErrorSchema, description="blob_quota_exceeded: push the records first"
    )
    @blp.alt_response(413, schema=ErrorSchema, description="larger than MAX_BLOB_BYTES")
    @blp.alt_response(415, schema=ErrorSchema, description="content type not allowed")
    def post(self, body, sha256):
        """Open a resumable chunked upload, or find this device's unfinished one"""
        state, created = attachments.start_upload(
            get_db(), runtime(), caller(), sha256, body["size"], body["content_type"]
        )
        return state, 201 if created else 200


@blp.route("/attachments/uploads/<string:upload_id>")
class UploadByIdViews(MethodView):
    @requires("agent")
    @blp.response(200, UploadSchema, headers=_UPLOAD_OFFSET)
    @blp.alt_response(404, schema=ErrorSchema, description="finished, discarded or not yours")
    def get(self, upload_id):
        """Where this device's unfinished upload resumes"""
        state = attachments.upload_state(get_db(), caller(), upload_id)
        return state, _upload_offset(state)

    @requires("agent")
    @blp.arguments(UploadOffsetHeaderSchema, location="headers")
    @blp.doc(requestBody=_CHUNK_BODY)
    @blp.response(200, UploadSchema, headers=_UPLOAD_OFFSET)
    @blp.alt_response(409, schema=ErrorSchema, description="offset_mismatch: resume at received")
    @blp.alt_response(415, schema=ErrorSchema, description="not an octet-stream chunk")
    @blp.alt_response(413, schema=ErrorSchema, description="chunk larger than MAX_CHUNK_BYTES")
    @blp.alt_response(422, schema=ErrorSchema, description="hash_mismatch (upload discarded)")
    def patch(self, headers, upload_id):
        """Send the next chunk at Upload-Offset; the last one completes the blob"""
        if request.mimetype not in _CHUNK_TYPES:
            raise UnsupportedMediaType(
                f"send chunks as {' or '.join(_CHUNK_TYPES)}", field="Content-Type"
            )
        state = attachments.append_chunk(
            get_db(), runtime(), caller(), upload_id, headers["upload_offset"], request.get_data()
        )
        return state, _upload_offset(state)
