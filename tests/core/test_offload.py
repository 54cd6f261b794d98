"""The pure part of keeping heavy decoding off the loop: where a ``data:`` URL may be cut."""

from __future__ import annotations

import base64
from urllib.parse import quote_from_bytes, unquote_to_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st

import radient_async as ra
from radient_async._offload import data_url_slices, decode_data_url

pytestmark = pytest.mark.anyio


@given(st.binary(max_size=400), st.integers(min_value=1, max_value=40))
def test_base64_slices_decode_to_the_whole(data: bytes, size: int) -> None:
    text = "data:image/png;base64," + base64.b64encode(data).decode()
    start = text.index(",") + 1
    pieces = list(data_url_slices(text, start, base64_encoded=True, size=size))
    assert "".join(pieces) == text[start:]
    assert all(len(piece) % 4 == 0 for piece in pieces)
    assert b"".join(base64.b64decode(piece, validate=True) for piece in pieces) == data


@given(st.binary(max_size=300), st.integers(min_value=3, max_value=40))
def test_percent_slices_never_split_an_escape(data: bytes, size: int) -> None:
    text = "data:image/png," + quote_from_bytes(data, safe="")
    start = text.index(",") + 1
    pieces = list(data_url_slices(text, start, base64_encoded=False, size=size))
    assert "".join(pieces) == text[start:]
    assert b"".join(unquote_to_bytes(piece) for piece in pieces) == data


@given(st.text(alphabet="%0a1fFzZ", max_size=200), st.integers(min_value=3, max_value=20))
def test_percent_slices_of_any_text_decode_as_the_whole(text: str, size: int) -> None:
    pieces = list(data_url_slices(text, 0, base64_encoded=False, size=size))
    assert b"".join(unquote_to_bytes(piece) for piece in pieces) == unquote_to_bytes(text)


async def test_a_data_url_decodes_across_many_slices() -> None:
    data = bytes(range(256)) * 20_000  # 5 MB: several slices, a checkpoint between them
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    pieces = await decode_data_url(url, max_bytes=len(data))
    assert len(pieces) > 1
    assert b"".join(pieces) == data
    with pytest.raises(ra.DownloadError, match="larger than"):
        await decode_data_url(url, max_bytes=len(data) - 1000)
    with pytest.raises(ra.DownloadError, match="invalid base64"):
        await decode_data_url(url[:-5] + "!" + url[-4:], max_bytes=len(data))
