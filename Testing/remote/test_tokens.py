"""The server's token file: only hashes on disk, a token shown once, constant-time lookup by name."""

from __future__ import annotations

import stat

import pytest

from SegmentWithSAM2Lib.errors import SegmentWithSAM2Error
from SegmentWithSAM2Lib.remote.tokens import TokenBook, digest, new_token, read_tokens


def test_a_new_token_is_kept_only_as_its_hash_in_an_owner_only_file(tmp_path):
    path = tmp_path / "tokens"
    alice = new_token(path, "alice")
    bob = new_token(path, "bob@lab")
    text = path.read_text()
    assert alice not in text and bob not in text
    assert text == f"alice {digest(alice)}\nbob@lab {digest(bob)}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(alice) >= 40 and alice != bob


def test_the_book_names_the_holder_of_a_token_and_nobody_for_others(tmp_path):
    path = tmp_path / "tokens"
    alice, bob = new_token(path, "alice"), new_token(path, "bob")
    book = TokenBook.read(path)
    assert (book.who(alice), book.who(bob)) == ("alice", "bob")
    assert book.who(alice[:-1] + ("A" if alice[-1] != "A" else "B")) is None
    assert book.who("") is None and book.who(None) is None
    assert book.who(digest(alice)) is None  # the stored hash is not a token


def test_a_repeated_name_and_a_bad_name_are_refused(tmp_path):
    path = tmp_path / "tokens"
    new_token(path, "alice")
    with pytest.raises(SegmentWithSAM2Error, match="already has a token named 'alice'"):
        new_token(path, "alice")
    with pytest.raises(SegmentWithSAM2Error, match="use letters, digits"):
        new_token(path, "two words")
    assert len(read_tokens(path)) == 1


@pytest.mark.parametrize("line", ["alice", "alice s3cr3t-token", "alice " + "a" * 63, "al ice " + "a" * 64])
def test_a_malformed_line_is_refused_with_its_number(tmp_path, line):
    path = tmp_path / "tokens"
    path.write_text("# comment\n\n" + line + "\n")
    with pytest.raises(SegmentWithSAM2Error, match=r"line 3: expected `NAME SHA256`"):
        read_tokens(path)


def test_a_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(SegmentWithSAM2Error, match="create it by adding a first token"):
        read_tokens(tmp_path / "none")


def test_the_file_is_read_again_when_it_changes_and_a_broken_one_lets_no_one_in(tmp_path):
    path = tmp_path / "tokens"
    alice, bob = new_token(path, "alice"), new_token(path, "bob")
    book = TokenBook.read(path)
    assert book.who(alice) == "alice" and book.who(bob) == "bob"
    path.write_text(f"bob {digest(bob)}\n")  # alice revoked, no restart
    assert book.who(alice) is None and book.who(bob) == "bob"
    carol = new_token(path, "carol")  # added while serving
    assert book.who(carol) == "carol"
    path.write_text(f"bob {bob}\n")  # a token pasted instead of its hash
    with pytest.warns(UserWarning, match="line 1.*no token is accepted until the file is mended"):
        assert book.who(bob) is None
    assert book.who(carol) is None
    path.write_text(f"bob {digest(bob)}\n")
    assert book.who(bob) == "bob"
