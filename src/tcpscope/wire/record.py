"""The dissected-frame record: a numpy structured dtype mirroring record.h.

The layout comes from the native module itself (offsetof of every field), so
the C struct is the single source of truth. Enumerations likewise.
"""
from __future__ import annotations

from types import MappingProxyType

import numpy as np

from . import _dissect


def _build_dtype() -> np.dtype:
    fields, itemsize = _dissect.record_layout()
    return np.dtype(
        {
            "names": [f[0] for f in fields],
            "formats": [f[2] for f in fields],
            "offsets": [f[1] for f in fields],
            "itemsize": itemsize,
        }
    )


RECORD_DTYPE: np.dtype = _build_dtype()

_ENUMS = _dissect.enums()
#: KIND_* values: what a frame is (KIND_TCP, KIND_UDP, ...).
KIND = MappingProxyType({k.removeprefix("KIND_"): v for k, v in _ENUMS["kind"].items()})
#: LAYER_* values: where dissection stopped.
LAYER = MappingProxyType({k.removeprefix("LAYER_"): v for k, v in _ENUMS["layer"].items()})
#: REASON_* values: why dissection stopped. Names double as damage counter names.
REASON = MappingProxyType({k.removeprefix("REASON_"): v for k, v in _ENUMS["reason"].items()})
#: WARN_* bit masks: non-fatal oddities. Names double as counter names.
WARNING = MappingProxyType({k.removeprefix("WARN_"): 1 << v for k, v in _ENUMS["warning"].items()})
#: CSUM_* verdicts.
CSUM = MappingProxyType({k.removeprefix("CSUM_"): v for k, v in _ENUMS["csum"].items()})
#: OPT_* bit masks of the options summary.
OPTION = MappingProxyType({k.removeprefix("OPT_"): 1 << v for k, v in _ENUMS["option"].items()})

REASON_NAMES = {v: k.lower() for k, v in REASON.items()}
KIND_NAMES = {v: k.lower() for k, v in KIND.items()}
LAYER_NAMES = {v: k.lower() for k, v in LAYER.items()}
CSUM_NAMES = {v: k.lower() for k, v in CSUM.items()}

# TCP flag bits (header order), as in record.h.
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, AE = (1 << i for i in range(9))
