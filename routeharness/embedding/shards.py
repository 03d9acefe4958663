"""The contract of an embedding cache shard's sidecar (``shard-<id>.json``, cache format
2): what a shard's two arrays stand for; ``routeharness.embedding.cache`` writes it and
decides what it vouches for. Apart from the cache so that importing the cache (as
``--help`` does, for its warning class) loads no pydantic."""

from __future__ import annotations

from typing import Literal

from routeharness.common.contract import Contract, Field

#: how a shard's vectors are stored (the sidecar's ``vectors_file``): None, ``shard-<id>.npy``
#: (what the cache writes), or ``float32-shuffled-zlib``, ``shard-<id>.vectors.zlib`` (the
#: float32 bytes regrouped by byte position, then zlib: lossless, 0.85 of the size; a
#: shipped seed's form)
VECTOR_FILES = {None: ".npy", "float32-shuffled-zlib": ".vectors.zlib"}


class ShardSidecar(Contract):
    """``shard-<id>.json``: what a shard's two arrays stand for. The encoder is recorded
    flat (``encoder`` its name, ``identity``, ``revision``, ``modalities``: the fields of
    an ``EncoderIdentity``), as cache format 2 always has."""

    encoder: str = Field(description="the encoder's registered name (shown, not compared)")
    identity: str = Field(description="the encoder identity that fixes its vectors")
    revision: str = Field(description="the encoder revision")
    modalities: list[str] = Field(description="what the encoder reads, sorted")
    format: int = Field(description="the cache format (CACHE_FORMAT)")
    shard: str = Field(description="the shard's id, its files' stem")
    key: str = Field(description="what a key is the sha256 of (KEY_DEFINITION)")
    count: int = Field(ge=0, description="rows in both arrays")
    dim: int = Field(ge=0, description="the vectors' dimension")
    dtype: str = Field(description="the vectors' dtype (float32)")
    vectors_sha256: str = Field(min_length=1, description="sha256 of the vectors' bytes")
    keys_sha256: str = Field(min_length=1, description="sha256 of the keys' bytes")
    vectors_file: Literal["float32-shuffled-zlib"] | None = Field(
        None, description="how the vectors are stored (VECTOR_FILES; absent: .npy); the "
        "sha256 is of the float32 bytes either way")
