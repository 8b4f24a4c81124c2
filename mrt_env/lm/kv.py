"""Key/value-cache plumbing for :class:`~mrt_env.lm.hf.HFLanguageModel` (imports torch).

A :class:`KVBatch` is a batch of sequences whose attention keys and values live in a
transformers ``DynamicCache``. Rows may hold masked holes (left padding, or padding between a
reused prefix and newly prefilled tokens); ``mask`` marks the real positions and
``next_position`` is the RoPE position of each row's next token. :class:`PrefixKVCache` is a
small LRU of single-sequence caches keyed by token ids, so a prompt that shares a prefix with a
previously seen one only prefills the tokens after the shared part.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mrt_env.lm.planning import common_prefix_length

LayerKV = list[tuple[torch.Tensor, torch.Tensor]]
"""Per-layer (keys, values), each of shape ``[batch, kv_heads, seq, head_dim]``."""


def cache_layers(cache: object) -> LayerKV:
    """The per-layer key/value tensors of a transformers ``DynamicCache``."""
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return [(layer.keys, layer.values) for layer in layers]
    return list(zip(cache.key_cache, cache.value_cache, strict=True))  # type: ignore[attr-defined]


def make_cache(layers: LayerKV | None, reserve: int = 0, growth: int | None = None) -> object:
    """A ``DynamicCache`` holding ``layers`` (an empty one when ``layers`` is None).

    With ``reserve > 0`` (and a transformers version whose caches are lists of layers), each
    layer preallocates room for ``reserve`` more positions, so decoding writes in place instead
    of concatenating the whole cache at every step. When the room is used up, a layer grows by
    ``growth`` positions (``None``: doubles).
    """
    if not layers:
        from transformers import DynamicCache

        return DynamicCache()
    if reserve > 0 and _preallocated_layer_class() is not None:
        length = layers[0][0].shape[-2]
        buffers = [
            (with_room(k, length + reserve), with_room(v, length + reserve)) for k, v in layers
        ]
        return cache_from_buffers(buffers, length, growth)
    return _plain_cache(layers)


def _plain_cache(layers: LayerKV) -> object:
    from transformers import DynamicCache

    if hasattr(DynamicCache, "from_legacy_cache"):
        return DynamicCache.from_legacy_cache(tuple(layers))
    return DynamicCache(layers)


def cache_from_buffers(buffers: LayerKV, length: int, growth: int | None = None) -> object:
    """A cache whose layers hold the first ``length`` positions of preallocated ``buffers``.

    Positions past ``length`` are free room for decoding (written before they are read); a
    full layer grows by ``growth`` positions (``None``: doubles).
    """
    layer_class = _preallocated_layer_class()
    if layer_class is None:
        return _plain_cache([(k[..., :length, :], v[..., :length, :]) for k, v in buffers])
    from transformers import DynamicCache

    cache = DynamicCache()
    cache.layers = [layer_class(k, v, length, growth) for k, v in buffers]
    return cache


def with_room(tensor: torch.Tensor, capacity: int) -> torch.Tensor:
    """A copy of ``tensor`` in a buffer of ``capacity`` positions (dim -2); the rest is unset."""
    buffer = tensor.new_empty((*tensor.shape[:-2], capacity, tensor.shape[-1]))
    buffer[..., : tensor.shape[-2], :] = tensor
    return buffer


_LAYER_CLASS: list[type] = []


def _preallocated_layer_class() -> type | None:
    """A ``DynamicLayer`` subclass that writes new positions into a preallocated buffer."""
    if _LAYER_CLASS:
        return _LAYER_CLASS[0]
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:  # pragma: no cover - transformers < 4.56 has no layer classes
        return None

    class PreallocatedLayer(DynamicLayer):  # type: ignore[misc, valid-type]
        """Keys/values in buffers with spare room; ``keys``/``values`` are views of the prefix.

        A full buffer grows by ``growth`` positions (``None``: doubles).
        """

        def __init__(
            self, keys: torch.Tensor, values: torch.Tensor, length: int, growth: int | None = None
        ) -> None:
            super().__init__()
            self._keys, self._values, self._length = keys, values, length
            self._growth = growth
            self.device, self.is_initialized = keys.device, True
            self._expose()

        def _expose(self) -> tuple[torch.Tensor, torch.Tensor]:
            keys = self._keys[..., : self._length, :]
            values = self._values[..., : self._length, :]
            self.keys, self.values = keys, values
            return keys, values

        def update(
            self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
        ) -> tuple[torch.Tensor, torch.Tensor]:
            end = self._length + key_states.shape[-2]
            if end > self._keys.shape[-2]:
                step = self._growth or self._keys.shape[-2]
                capacity = max(end, self._keys.shape[-2] + step)
                keys, values = self._expose()
                self._keys, self._values = with_room(keys, capacity), with_room(values, capacity)
            self._keys[..., self._length : end, :] = key_states
            self._values[..., self._length : end, :] = value_states
            self._length = end
            return self._expose()

    _LAYER_CLASS.append(PreallocatedLayer)
    return PreallocatedLayer


def left_pad(layers: LayerKV, length: int) -> LayerKV:
    """Left-pad every tensor of ``layers`` with zeros to ``length`` positions."""
    return [
        (F.pad(k, (0, 0, length - k.shape[-2], 0)), F.pad(v, (0, 0, length - v.shape[-2], 0)))
        for k, v in layers
    ]


@dataclass
class KVBatch:
    """A batch of cached sequences ready for the next decoding step.

    Attributes:
        cache: The transformers ``DynamicCache`` (keys/values of every real and pad position).
        mask: ``[batch, seq]`` attention mask (1 = real position, 0 = padding).
        next_position: ``[batch]`` RoPE position of each row's next token.
    """

    cache: object
    mask: torch.Tensor
    next_position: torch.Tensor

    def select(self, index: torch.Tensor, reserve: int = 0, growth: int | None = None) -> KVBatch:
        """The rows ``index`` (repeats allowed: this is how n samples share one prefill).

        ``reserve`` preallocates room for that many decoding steps, ``growth`` is how much a
        full cache grows by (see :func:`make_cache`).
        """
        layers = [(k.index_select(0, index), v.index_select(0, index)) for k, v in self._layers()]
        cache = make_cache(layers, reserve, growth)
        return KVBatch(cache, self.mask[index], self.next_position[index])

    def row(self, index: int) -> LayerKV:
        """Keys/values of row ``index`` at its real positions only, as a batch of one."""
        if self.mask.shape[0] == 1 and bool(self.mask.all()):
            return self._layers()  # nothing to drop: share the tensors
        keep = self.mask[index].bool()
        return [
            (k[index, :, keep].unsqueeze(0), v[index, :, keep].unsqueeze(0))
            for k, v in self._layers()
        ]

    def _layers(self) -> LayerKV:
        return cache_layers(self.cache)

    @staticmethod
    def expand(
        parts: Sequence[KVBatch],
        sources: Sequence[tuple[int, int]],
        n: int,
        reserve: int,
        growth: int | None = None,
    ) -> KVBatch:
        """A decoding batch of ``n`` consecutive copies of each source row, room reserved.

        Args:
            parts: Prefilled batches (of different lengths; shorter ones are left-padded).
            sources: ``(part index, row)`` of each output prompt.
            n: Copies (samples) per source row.
            reserve: Decoding steps to preallocate.
            growth: Positions a full cache grows by (``None``: doubles).

        Each part's rows are copied once, straight into the final buffers.
        """
        length = max(int(part.mask.shape[1]) for part in parts)
        part_layers = [part._layers() for part in parts]
        buffers = []
        for layer in range(len(part_layers[0])):
            keys, values = part_layers[0][layer]
            shape = (len(sources), n, keys.shape[1], length + reserve, keys.shape[-1])
            buffer_k, buffer_v = keys.new_empty(shape), values.new_empty(shape)
            for output, (part, row) in enumerate(sources):
                k, v = part_layers[part][layer]
                start = length - k.shape[-2]
                buffer_k[output, :, :, start:length].copy_(k[row].expand(n, *k.shape[1:]))
                buffer_v[output, :, :, start:length].copy_(v[row].expand(n, *v.shape[1:]))
                buffer_k[output, :, :, :start].zero_()
                buffer_v[output, :, :, :start].zero_()
            flat = (len(sources) * n, *shape[2:])
            buffers.append((buffer_k.view(flat), buffer_v.view(flat)))
        masks = [F.pad(parts[p].mask[r], (length - parts[p].mask.shape[1], 0)) for p, r in sources]
        positions = [parts[p].next_position[r] for p, r in sources]
        return KVBatch(
            cache_from_buffers(buffers, length, growth),
            torch.stack(masks).repeat_interleave(n, dim=0),
            torch.stack(positions).repeat_interleave(n, dim=0),
        )


@dataclass
class PrefixMatch:
    """A reusable cached prefix: its length and keys/values (a batch of one)."""

    length: int
    layers: LayerKV | None


class PrefixKVCache:
    """LRU of single-sequence key/value caches keyed by their token ids.

    ``lookup(ids)`` returns the longest common token prefix between ``ids`` and any entry
    (capped at ``len(ids) - 1`` so at least one token is always run to obtain logits) with the
    keys/values of that prefix. Entries are evicted least-recently-used first when there are
    more than ``max_entries`` of them, more than ``max_tokens`` cached tokens or more than
    ``max_bytes`` bytes of keys/values in total (``None``: no such cap). A sequence larger
    than a cap on its own is not stored.

    Example:
        >>> cache = PrefixKVCache(max_entries=8, max_tokens=None, max_bytes=2 * 4 * 4 * 3)
        >>> kv = torch.zeros(1, 1, 3, 4)
        >>> cache.store([1, 2, 3], [(kv, kv)])
        >>> cache.lookup([1, 2, 9]).length, cache.bytes
        (2, 96)
    """

    def __init__(
        self, max_entries: int, max_tokens: int | None = None, max_bytes: int | None = None
    ) -> None:
        for name, value in (("max_entries", max_entries), ("max_tokens", max_tokens)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"prefix cache {name} must be an int, got {value!r}")
            if value is not None and value < 0:
                raise ValueError(f"prefix cache {name} must be >= 0, got {value}")
        if max_bytes is not None and not 0 <= max_bytes < float("inf"):
            raise ValueError(f"prefix cache max_bytes must be >= 0 and finite, got {max_bytes}")
        self.max_entries = max_entries
        self.max_tokens = max_tokens
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[int, ...], tuple[np.ndarray, LayerKV, int]] = OrderedDict()
        self._tokens = 0
        self.bytes = 0
        """Bytes of keys/values held now."""

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()
        self._tokens = self.bytes = 0

    def lookup(self, ids: Sequence[int]) -> PrefixMatch:
        """The longest reusable prefix of ``ids`` (length 0 when nothing matches)."""
        best_key, best_length = self._best(ids)
        if best_key is None:
            return PrefixMatch(0, None)
        self._entries.move_to_end(best_key)
        layers = self._entries[best_key][1]
        return PrefixMatch(
            best_length, [(k[:, :, :best_length], v[:, :, :best_length]) for k, v in layers]
        )

    def reusable_length(self, ids: Sequence[int]) -> int:
        """Length :meth:`lookup` would reuse, without touching the LRU order."""
        return self._best(ids)[1]

    def _best(self, ids: Sequence[int]) -> tuple[tuple[int, ...] | None, int]:
        if not self._entries or len(ids) < 2:
            return None, 0
        query = np.asarray(ids, dtype=np.int64)
        best_key, best_length = None, 0
        for key, (array, _, _) in self._entries.items():
            common = common_prefix_length(array, query, limit=len(query) - 1)
            if common > best_length:
                best_key, best_length = key, common
        return best_key, best_length

    def store(self, ids: Sequence[int], layers: LayerKV) -> None:
        """Remember the keys/values ``layers`` (a batch of one) of the sequence ``ids``."""
        size = layers_bytes(layers)
        too_big = (self.max_tokens is not None and len(ids) > self.max_tokens) or (
            self.max_bytes is not None and size > self.max_bytes
        )
        if self.max_entries <= 0 or too_big:
            return
        key = tuple(ids)
        if key in self._entries:
            self._entries.move_to_end(key)
            return
        self._entries[key] = (np.asarray(ids, dtype=np.int64), layers, size)
        self._tokens += len(key)
        self.bytes += size
        while self._over_capacity():
            old_key, (_, _, old_size) = self._entries.popitem(last=False)
            self._tokens -= len(old_key)
            self.bytes -= old_size

    def _over_capacity(self) -> bool:
        return (
            len(self._entries) > self.max_entries
            or (self.max_tokens is not None and self._tokens > self.max_tokens)
            or (self.max_bytes is not None and self.bytes > self.max_bytes)
        )


def layers_bytes(layers: LayerKV) -> int:
    """Bytes of the key/value tensors of ``layers``."""
    return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)


CPU_FALLBACK_BYTES = 8 * 2**30
"""Free memory assumed on a CPU whose available RAM cannot be read (non-Linux)."""


def free_memory_bytes(device: torch.device) -> int:
    """Free memory for new tensors on ``device``.

    CUDA: ``torch.cuda.mem_get_info`` plus what torch's allocator holds but does not use. CPU:
    ``MemAvailable`` of ``/proc/meminfo`` (:data:`CPU_FALLBACK_BYTES` where it cannot be read).
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        reserved = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + reserved)
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return CPU_FALLBACK_BYTES


def default_prefix_cache_bytes(device: torch.device) -> int:
    """Default byte cap of a prefix cache: 2 GiB on CPU, 20% of a CUDA device's memory."""
    if device.type == "cuda":
        return int(0.2 * torch.cuda.get_device_properties(device).total_memory)
    return 2 * 2**30


def kv_bytes_per_token(config: Any, dtype: torch.dtype) -> int:
    """Bytes of keys and values one token adds to the cache of a transformers model config.

    ``2 (keys, values) x layers x kv heads x head dim x dtype size``.

    Example:
        >>> from types import SimpleNamespace
        >>> qwen = SimpleNamespace(num_hidden_layers=28, num_attention_heads=12,
        ...     num_key_value_heads=2, hidden_size=1536)
        >>> kv_bytes_per_token(qwen, torch.bfloat16)
        28672
    """
    heads = getattr(config, "num_attention_heads", 1)
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    size = torch.empty((), dtype=dtype).element_size()
    return 2 * int(config.num_hidden_layers) * int(kv_heads) * int(head_dim) * size


def stack_prefixes(matches: Sequence[PrefixMatch], length: int) -> LayerKV | None:
    """Reused prefixes left-padded to ``length`` and stacked (None when nothing is reused)."""
    template = next((m.layers for m in matches if m.layers), None)
    if length == 0 or template is None:
        return None
    empty = [(k[:, :, :0], v[:, :, :0]) for k, v in template]
    padded = [left_pad(m.layers or empty, length) for m in matches]
    return [
        (torch.cat([p[i][0] for p in padded]), torch.cat([p[i][1] for p in padded]))
        for i in range(len(template))
    ]
