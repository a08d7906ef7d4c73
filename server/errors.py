"""Domain failures: one class each, with a stable machine-readable code.

The HTTP status of each lives in server/api/errors.py and nowhere else.
"""

from __future__ import annotations

from typing import Any


class DoorstepError(Exception):
    """Base of every failure the API reports on purpose."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details


class InvalidInput(DoorstepError):
    """The request is well-formed JSON but a value is not acceptable."""

    code = "invalid_input"


class BadCursor(InvalidInput):
    """A sync cursor that this server did not issue to this device."""

    code = "invalid_cursor"


class SyncOptionUnsupported(InvalidInput):
    """A WatermelonDB sync option or schema version the front door does not offer."""

    code = "sync_option_unsupported"


class BadChangeSet(InvalidInput):
    """A WatermelonDB change set shaped otherwise than the app schema says (a row without an
    id): the push fails whole, as the protocol wants for a malformed change set."""

    code = "invalid_change_set"


class NotAuthenticated(DoorstepError):
    """No credentials, or credentials that do not prove who the caller is."""

    code = "not_authenticated"


class InvalidCredentials(NotAuthenticated):
    """Wrong username or password."""

    code = "invalid_credentials"


class InvalidToken(NotAuthenticated):
    """A token that is forged, expired, or not meant for this API."""

    code = "invalid_token"


class TokenReused(NotAuthenticated):
    """A spent refresh token came back: its whole family is now revoked."""

    code = "refresh_token_reused"


class DeviceRevoked(NotAuthenticated):
    """The device was revoked by an admin; it must wipe its local data."""

    code = "device_revoked"


class DeviceMismatch(NotAuthenticated):
    """The token is bound to another device than the one calling."""

    code = "device_mismatch"


class Forbidden(DoorstepError):
    """The caller's role may not do this."""

    code = "forbidden"


class PasswordChangeRequired(Forbidden):
    """The password was handed over by someone else: set a new one before logging in."""

    code = "password_change_required"


class DeviceNotAllowed(Forbidden):
    """The device is registered to someone else, or not registered at all."""

    code = "device_not_allowed"


class PurgeOverdue(Forbidden):
    """The device left a purge order unconfirmed past the deadline: no new cards."""

    code = "purge_unacknowledged"


class NotFound(DoorstepError):
    """No such resource, or none the caller may know about."""

    code = "not_found"


class Conflict(DoorstepError):
    """The resource already exists in another form."""

    code = "conflict"


class VersionConflict(Conflict):
    """The caller edited a stale version of the resource."""

    code = "version_conflict"


class ReviewAlreadyResolved(Conflict):
    """A flag review item that is resolved cannot be assigned or resolved again: reopen it."""

    code = "review_already_resolved"


class ReviewNotResolved(Conflict):
    """Only a resolved flag review item can be reopened."""

    code = "review_not_resolved"


class ContactExists(Conflict):
    """The contact is already on the case's log (same external reference or natural key)."""

    code = "contact_exists"


class ContactRefused(InvalidInput):
    """A planned contact would break a compliance rule; `details.rule` names it."""

    code = "contact_refused"


class PreconditionRequired(DoorstepError):
    """A change was sent without the version it was based on."""

    code = "version_required"


class DispatchRefused(DoorstepError):
    """Planning this visit would break a hard compliance rule."""

    code = "dispatch_refused"


class RateLimited(DoorstepError):
    """Too many attempts; try again after `retry_after` seconds."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.retry_after = retry_after


class PayloadTooLarge(DoorstepError):
    """The body or blob exceeds the configured limit."""

    code = "payload_too_large"


class UnsupportedMediaType(DoorstepError):
    """The content type is not one this endpoint accepts."""

    code = "unsupported_media_type"


class BatchTooLarge(PayloadTooLarge):
    """More records in one push than the server takes."""

    code = "batch_too_large"


# Attachment uploads.


class HashMismatch(InvalidInput):
    """The bytes received do not hash to the SHA-256 the client named."""

    code = "hash_mismatch"


class OffsetMismatch(Conflict):
    """A chunk was sent for another offset than the upload's resume point."""

    code = "offset_mismatch"


class BlobQuotaExceeded(Conflict):
    """The device holds as many unreferenced blob bytes as it may: push the records that
    reference them (or wait for them to expire) before uploading more."""

    code = "blob_quota_exceeded"


class BeyondDeclaredSize(InvalidInput):
    """A chunk would take the upload past the size declared when it was created."""

    code = "beyond_declared_size"


# Backups and restores (command line only: never an HTTP answer).


class BackupError(Exception):
    """A backup or restore could not be done; nothing at the destination changed."""


class UnsoundCopy(BackupError):
    """The copy fails integrity_check, is not a Doorstep database, or its ledger is broken."""


class WouldOverwrite(BackupError):
    """The restore target already holds data and overwriting it was not asked for."""


# The ledger's signing keys (start-up and command line only: never an HTTP answer).


class KeyringError(Exception):
    """A signing-key change that cannot be recorded as asked."""


class SigningKeyUnknown(KeyringError):
    """The server's signing key is not in the ledger keyring: the ledger's checkpoints and
    certificates would be checked against a key that never signed them."""
