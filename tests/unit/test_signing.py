"""sync/signing.py: key ids, signatures and the one timestamp spelling of signed documents."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.domain.ledger import checkpoint_is_signed, read_checkpoint, sign_checkpoint
from server.domain.retention import certificate_is_signed, sign_certificate
from sync.receipts import Receipt, sign_receipt, verify_receipt
from sync.signing import (
    SignedFormError,
    decode_signature,
    encode_signature,
    format_timestamp,
    key_id,
    load_private_key,
    load_public_key,
    public_key_pem,
    read_key_id,
    read_timestamp,
    sign,
    verify,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
KEY_ID = "56475aa75463474c"
MESSAGE = b"doorstep-test-v1\nhello\n2026-11-24T02:00:00Z"


def test_key_id_is_sixteen_hex_of_the_public_key():
    assert key_id(KEY.public_key()) == KEY_ID
    assert key_id(OTHER.public_key()) != KEY_ID


def test_sign_then_verify_round_trips():
    signature = sign(KEY, MESSAGE)
    assert len(signature) == 86 and "=" not in signature
    assert verify(KEY.public_key(), MESSAGE, KEY_ID, signature)
    assert decode_signature(signature) == KEY.sign(MESSAGE)
    assert encode_signature(KEY.sign(MESSAGE)) == signature


def test_tampered_message_or_signature_fails():
    signature = sign(KEY, MESSAGE)
    assert not verify(KEY.public_key(), MESSAGE + b"!", KEY_ID, signature)
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    assert not verify(KEY.public_key(), MESSAGE, KEY_ID, flipped)


def test_wrong_key_or_wrong_key_id_fails():
    signature = sign(KEY, MESSAGE)
    assert not verify(OTHER.public_key(), MESSAGE, KEY_ID, signature)
    assert not verify(OTHER.public_key(), MESSAGE, key_id(OTHER.public_key()), signature)
    assert not verify(KEY.public_key(), MESSAGE, key_id(OTHER.public_key()), signature)


_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _spare_bits_set(text: str) -> str:
    """The same 64 bytes with a spare low bit of the last character set: another spelling."""
    return text[:-1] + _B64URL[_B64URL.index(text[-1]) | 1]


@pytest.mark.parametrize(
    "spelling",
    [
        lambda s: s + "==",  # padded
        lambda s: s[:-1],  # short
        lambda s: s + "A",  # long
        lambda s: s.replace("-", "+").replace("_", "/"),  # the standard alphabet
        _spare_bits_set,
        lambda s: None,
        lambda s: 12,
    ],
)
def test_only_the_canonical_signature_spelling_decodes(spelling):
    signature = sign(KEY, MESSAGE)
    assert "-" in signature and "_" in signature and _B64URL.index(signature[-1]) % 16 == 0
    other = spelling(signature)
    assert decode_signature(other) is None
    assert not verify(KEY.public_key(), MESSAGE, KEY_ID, other)


def test_public_key_pem_round_trips_from_either_half():
    pem = public_key_pem(KEY)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert public_key_pem(KEY.public_key()) == pem
    assert key_id(load_public_key(pem)) == KEY_ID
    assert key_id(load_public_key(pem.encode())) == KEY_ID


def test_keys_of_another_kind_are_refused():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

    ec_key = generate_private_key(SECP256R1())
    ec_private = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ec_public = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="Ed25519"):
        load_private_key(ec_private)
    with pytest.raises(ValueError, match="Ed25519"):
        load_public_key(ec_public)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 11, 24, 2, 0, 30, 999_999, tzinfo=UTC), "2026-11-24T02:00:30Z"),
        (
            datetime(2026, 11, 24, 10, 0, tzinfo=timezone(timedelta(hours=8))),
            "2026-11-24T02:00:00Z",
        ),
        (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02T03:04:05Z"),
    ],
)
def test_timestamps_are_utc_to_the_second_and_read_back(moment, text):
    assert format_timestamp(moment) == text
    assert read_timestamp(text, "at") == moment.astimezone(UTC).replace(microsecond=0)


def test_naive_datetimes_cannot_be_signed():
    with pytest.raises(SignedFormError):
        format_timestamp(datetime(2026, 11, 24, 2, 0))


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-24T02:00:00+00:00",
        "2026-11-24T02:00:00.000Z",
        "2026-11-24 02:00:00Z",
        "2026-11-24T02:00:00z",
        "2026-11-24T02:00:00",
        "2026-11-24t02:00:00Z",
        "2026-1-24T02:00:00Z",
        "2026-11-24T2:00:00Z",
        " 2026-11-24T02:00:00Z",
        "2026-11-24T02:00:00Z\n",
        "２０２６-11-24T02:00:00Z",  # full-width digits
        "2026-13-24T02:00:00Z",
        "2026-02-30T02:00:00Z",
        "2026-11-24T24:00:00Z",
        "2026-11-24T02:00:60Z",
        "0000-01-01T00:00:00Z",
        "",
        None,
        1764000000,
    ],
)
def test_non_canonical_timestamps_are_refused(text):
    with pytest.raises(SignedFormError, match="created_at"):
        read_timestamp(text, "created_at")


@pytest.mark.parametrize("text", [KEY_ID.upper(), KEY_ID[:-1], KEY_ID + "0", "k", None])
def test_key_ids_are_read_only_in_their_one_form(text):
    assert read_key_id(KEY_ID) == KEY_ID
    with pytest.raises(SignedFormError, match="key_id"):
        read_key_id(text)


def test_signed_form_errors_are_value_errors():
    """Callers that refuse a malformed document on ValueError keep doing so."""
    assert issubclass(SignedFormError, ValueError)


# Documents signed before the signing code moved into sync/signing.py, with KEY: they must
# keep verifying, and signing the same values must give the same bytes.

RECEIPT = {
    "version": "doorstep-receipt-v1",
    "agreement_id": "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
    "content_hash": "a95d68ab2a578ba746520ae9442c65529499bf47df2a7be691b21232e9e7356c",
    "received_at": "2025-03-14T10:45:00Z",
    "key_id": KEY_ID,
    "signature": (
        "s-54CYHJ0K4VE6_Rzuq70Mv0auP1_UwXOUwMua07e2FWVk5htlpnDzV1KJCMQecHYdyKO1L1sOgJJjiIQMiMDA"
    ),
}
CHECKPOINT = {
    "version": "doorstep-ledger-checkpoint-v1",
    "created_at": "2026-11-24T02:00:30Z",
    "head_seq": 8,
    "head_hash": "b" * 64,
    "key_id": KEY_ID,
    "signature": (
        "gV0rMvFClc9MF6Fo5roit8v74e8hZs8U8BJ3z7LE8TbKsaLNA7Bk0qcepu01xkI-bHzyN-r3E7X_U0PR93TsCQ"
    ),
}
CERTIFICATE = {
    "created_at": "2026-11-24T02:00:00Z",
    "kind": "personal_data",
    "rule": "rule text",
    "cutoff": "2026-05-28T02:00:00Z",
    "removed_count": 2,
    "checkpoint_id": 3,
    "details": {"borrowers": 2, "note": "héllo"},
    "key_id": KEY_ID,
    "signature": (
        "DDJ4tBIN462aRiCYnpGuya2mK3QQZGvp1LlNWghb5jrKp9FfQenW9sQug858lM0f-ZF88XCiG3ymTaeFW5OlDA"
    ),
}


def test_receipts_issued_earlier_verify_and_sign_to_the_same_bytes():
    assert verify_receipt(public_key_pem(KEY), RECEIPT)
    again = sign_receipt(
        KEY,
        RECEIPT["agreement_id"],
        RECEIPT["content_hash"],
        datetime(2025, 3, 14, 10, 45, 0, 123_456, tzinfo=UTC),
    )
    assert again.to_dict() == RECEIPT
    assert Receipt.from_dict(RECEIPT) == again


def test_checkpoints_issued_earlier_verify_and_sign_to_the_same_bytes():
    assert checkpoint_is_signed(KEY.public_key(), read_checkpoint(CHECKPOINT))
    again = sign_checkpoint(KEY, 8, "b" * 64, datetime(2026, 11, 24, 2, 0, 30, 5, tzinfo=UTC))
    assert again.to_dict() == CHECKPOINT
    assert not checkpoint_is_signed(OTHER.public_key(), read_checkpoint(CHECKPOINT))


def test_certificates_issued_earlier_verify_and_sign_to_the_same_bytes():
    assert certificate_is_signed(KEY.public_key(), CERTIFICATE)
    again = sign_certificate(
        KEY,
        kind="personal_data",
        rule="rule text",
        cutoff=datetime(2026, 5, 28, 2, 0, tzinfo=UTC),
        removed_count=2,
        checkpoint_id=3,
        details={"borrowers": 2, "note": "héllo"},
        created_at=datetime(2026, 11, 24, 2, 0, tzinfo=UTC),
    )
    assert again == CERTIFICATE
    assert not certificate_is_signed(KEY.public_key(), {**CERTIFICATE, "removed_count": 1})
