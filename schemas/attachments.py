"""Attachments: blob metadata and resumable chunked uploads."""

from __future__ import annotations

from marshmallow import EXCLUDE, fields, validate

from schemas.common import StrictSchema, json_int


class AttachmentSchema(StrictSchema):
    """A blob as the server holds it; never its bytes."""

    sha256 = fields.Str(required=True, metadata={"description": "64 lowercase hex digits"})
    size = fields.Int(required=True, metadata={"description": "bytes"})
    content_type = fields.Str(required=True)
    complete = fields.Bool(
        required=True, metadata={"description": "stored and hash-verified; records may use it"}
    )
    received = fields.Int(
        required=True, metadata={"description": "bytes received so far (= size when complete)"}
    )
    created_at = fields.Str(
        allow_none=True, metadata={"description": "when the blob was stored; null while uploading"}
    )


class UploadCreateSchema(StrictSchema):
    size = json_int(
        required=True,
        validate=validate.Range(min=1),
        metadata={"description": "the blob's total size in bytes"},
    )
    content_type = fields.Str(required=True, validate=validate.Length(min=1, max=100))


class UploadSchema(StrictSchema):
    """A chunked upload: send the next chunk at `received`."""

    upload_id = fields.Str(
        allow_none=True, metadata={"description": "null when the blob was already complete"}
    )
    sha256 = fields.Str(required=True)
    size = fields.Int(required=True)
    content_type = fields.Str(required=True)
    received = fields.Int(required=True, metadata={"description": "the resume point"})
    complete = fields.Bool(required=True)


class UploadOffsetHeaderSchema(StrictSchema):
    """Only Upload-Offset is read; every other header is none of this schema's business."""

    class Meta:
        unknown = EXCLUDE

    upload_offset = fields.Int(
        required=True,
        data_key="Upload-Offset",
        validate=validate.Range(min=0),
        metadata={"description": "where this chunk starts: the upload's current `received`"},
    )
