from __future__ import annotations

import hmac

import pytest

from busignal.wire.signing import DIGEST_SIZE, Signer, parse_secrets


def test_signer_sign_returns_raw_sha256_digest() -> None:
    mac = Signer(["k"]).sign(b"a", b"b")

    assert isinstance(mac, bytes)
    assert len(mac) == DIGEST_SIZE == 32


def test_signer_verify_accepts_own_signature() -> None:
    signer = Signer(["k"])

    assert signer.verify(signer.sign(b"envelope", b"kwargs"), b"envelope", b"kwargs")


def test_signer_verify_rejects_wrong_key() -> None:
    mac = Signer(["k1"]).sign(b"x")

    assert not Signer(["k2"]).verify(mac, b"x")


def test_signer_verify_rejects_flipped_byte_in_mac() -> None:
    signer = Signer(["k"])
    mac = bytearray(signer.sign(b"x"))
    mac[5] ^= 0x01

    assert not signer.verify(bytes(mac), b"x")


def test_signer_verify_rejects_flipped_byte_in_part() -> None:
    signer = Signer(["k"])

    assert not signer.verify(signer.sign(b"payload"), b"paylaod")


def test_signer_verify_rejects_truncated_mac() -> None:
    signer = Signer(["k"])

    assert not signer.verify(signer.sign(b"x")[:-1], b"x")


def test_signer_sign_separates_part_boundaries() -> None:
    signer = Signer(["k"])

    assert signer.sign(b"ab", b"c") != signer.sign(b"a", b"bc")
    assert signer.sign(b"ab") != signer.sign(b"ab", b"")
    assert not signer.verify(signer.sign(b"ab", b"c"), b"a", b"bc")


def test_signer_sign_uses_first_secret() -> None:
    assert Signer(["new", "old"]).sign(b"x") == Signer(["new"]).sign(b"x")


def test_signer_verify_accepts_old_secret_during_rotation() -> None:
    old_mac = Signer(["old"]).sign(b"x")

    assert Signer(["new", "old"]).verify(old_mac, b"x")


def test_signer_verify_rejects_removed_secret_after_rotation() -> None:
    old_mac = Signer(["old"]).sign(b"x")

    assert not Signer(["new"]).verify(old_mac, b"x")


def test_signer_str_and_bytes_secrets_are_equivalent() -> None:
    assert Signer(["clé"]).sign(b"x") == Signer(["clé".encode()]).sign(b"x")


def test_signer_verify_uses_compare_digest_for_every_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    signer = Signer(["a", "b", "c"])
    mac = signer.sign(b"x")
    monkeypatch.setattr(hmac, "compare_digest", recording)

    assert signer.verify(mac, b"x")
    assert len(calls) == 3
    assert all(a == mac for a, _ in calls)


def test_signer_rejects_empty_secrets() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        Signer([])


def test_signer_rejects_blank_secret() -> None:
    with pytest.raises(ValueError, match="cannot be empty"):
        Signer(["k", ""])


def test_signer_rejects_single_string() -> None:
    with pytest.raises(TypeError, match="sequence of secrets"):
        Signer("secret")


def test_signer_repr_hides_secrets() -> None:
    text = repr(Signer(["hunter2", "swordfish"]))

    assert "hunter2" not in text
    assert "swordfish" not in text
    assert "2 secret" in text


def test_parse_secrets_splits_and_strips() -> None:
    assert parse_secrets(" new , old,") == ["new", "old"]


def test_parse_secrets_empty_value_gives_empty_list() -> None:
    assert parse_secrets("") == []
    assert parse_secrets(" , ") == []
