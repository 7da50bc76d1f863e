"""The model zoo: builds every catalog architecture by name (``backend.specs.catalog``).

``build_model(architecture, num_classes, options)`` returns a freshly initialised ``torch.nn.Module``
whose classifier head has ``num_classes`` outputs. Every model's head is its last ``nn.Linear`` (see
``head_name``); ``load_weights`` relies on that to re-initialise a head whose shape differs from the
weights it loads (the ``load_from`` rule: same architecture, other classes).

The catalog's ``dropout`` option means "dropout before the classifier head" for every architecture. Where
the builder has such a knob (timm's ``drop_rate``, torchvision EfficientNet / MobileNetV3 ``dropout``,
our ``tiny_cnn``) it is used; elsewhere a forward pre-hook on the head applies it, so the state-dict keys
never depend on the option and a checkpoint loads whatever dropout it was trained with.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn
from torch.nn import functional as F

from backend.specs.catalog import CatalogEntry, get_entry, list_models
from worker.zoo.tiny_cnn import TinyCNN

__all__ = [
    "TinyCNN",
    "build_model",
    "count_params",
    "head_name",
    "list_buildable",
    "load_weights",
]

# torchvision builders whose own ``dropout`` kwarg is the dropout right before the final Linear.
_NATIVE_HEAD_DROPOUT = {"mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0"}


def _entry(architecture: str) -> CatalogEntry:
    from worker.tasks import RUNTIMES

    entry = get_entry(architecture)
    if entry.task not in RUNTIMES:
        raise ValueError(f"{architecture!r} is a {entry.task} model; this worker cannot build that task")
    return entry


def _check_options(entry: CatalogEntry, options: Mapping[str, Any]) -> dict[str, Any]:
    """Options with catalog defaults filled in; unknown names and out-of-range values raise ValueError."""
    known = {o.name: o for o in entry.options}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"{entry.name}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known) or 'none'}"
        )
    out: dict[str, Any] = {}
    for name, spec in known.items():
        value = options.get(name, spec.default)
        if spec.type in ("int", "float"):
            value = float(value) if spec.type == "float" else int(value)
            if (spec.minimum is not None and value < spec.minimum) or (
                spec.maximum is not None and value > spec.maximum
            ):
                raise ValueError(
                    f"{entry.name}: option {name}={value} is outside [{spec.minimum}, {spec.maximum}]"
                )
        elif spec.choices is not None and value not in spec.choices:
            raise ValueError(f"{entry.name}: option {name}={value!r} is not one of {spec.choices}")
        out[name] = value
    return out


def head_name(model: nn.Module) -> str:
    """Module path of the classifier head: the last ``nn.Linear`` registered in the model."""
    name = ""
    for n, m in model.named_modules():
        if isinstance(m, nn.Linear):
            name = n
    if not name:
        raise ValueError(f"{type(model).__name__} has no nn.Linear head")
    return name


def _add_head_dropout(model: nn.Module, p: float) -> None:
    """Dropout on the head's input in training mode, without changing the state-dict keys."""
    if p <= 0:
        return
    head = model.get_submodule(head_name(model))

    def _drop(module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (F.dropout(args[0], p, module.training), *args[1:])

    head.register_forward_pre_hook(_drop)


DOWNLOAD_TIMEOUT_SECONDS = 60.0  # between two reads of a weights download, not for the whole file


def weights_file_state(url: str, name: str, *, offline: bool) -> dict[str, torch.Tensor]:
    """The state dict a weights file at ``url`` holds, read from the torch hub cache
    (``$TORCH_HOME/hub/checkpoints``) and, when it is not there and downloads are allowed, downloaded into
    it first as torchvision does (the hash in its name checked, the file moved into place whole). Loaded
    with ``weights_only``. A FileNotFoundError names the file and the folder when it cannot be had."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / os.path.basename(urlparse(url).path)
    fix = f"put the file at {path}, or train with model.pretrained: false"
    if not path.is_file():
        if offline:
            raise FileNotFoundError(
                f"pretrained weights {name} are not in the torch hub cache and downloads are off "
                f"(STUDIO_OFFLINE): {fix}"
            )
        found = re.search(torch.hub.HASH_REGEX, path.name)
        folder.mkdir(parents=True, exist_ok=True)
        # torch.hub reads without a timeout: a server that accepts and then says nothing would hold the
        # run forever. A training worker runs one job at a time, so the process-wide default is safe here.
        before = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_SECONDS)
        try:
            prefix = found.group(1) if found else None
            torch.hub.download_url_to_file(url, str(path), hash_prefix=prefix, progress=False)
        except (OSError, RuntimeError, ValueError) as exc:  # no network, a refused URL, a wrong hash
            raise FileNotFoundError(
                f"could not download pretrained weights {name} from {url} ({exc}); {fix} "
                "(or set STUDIO_OFFLINE=1 on a machine without the network)"
            ) from exc
        finally:
            socket.setdefaulttimeout(before)
    return dict(torch.load(path, map_location="cpu", weights_only=True))


def pretrained_state(weights_name: str) -> dict[str, torch.Tensor]:
    """torchvision's weights ``weights_name`` (e.g. ``ResNet18_Weights.IMAGENET1K_V1``): from the torch hub
    cache, downloaded into it once unless ``STUDIO_OFFLINE`` is set."""
    from torchvision.models import get_weight

    from backend.settings import get_settings

    return weights_file_state(get_weight(weights_name).url, weights_name, offline=get_settings().offline)


def _build_torchvision(entry: CatalogEntry, num_classes: int, dropout: float) -> nn.Module:
    import torchvision.models as tvm

    builder: Callable[..., nn.Module] = getattr(tvm, entry.builder)
    kwargs: dict[str, Any] = {"weights": None, "num_classes": num_classes}
    if entry.name in _NATIVE_HEAD_DROPOUT:
        kwargs["dropout"] = dropout
    model = builder(**kwargs)
    if entry.name not in _NATIVE_HEAD_DROPOUT:
        _add_head_dropout(model, dropout)
    return model


def _build_timm(entry: CatalogEntry, num_classes: int, dropout: float) -> nn.Module:
    import timm

    # img_size stays the default; dynamic_img_size lets ViTs take any multiple of the patch size.
    model: nn.Module = timm.create_model(
        entry.builder, pretrained=False, num_classes=num_classes, drop_rate=dropout, dynamic_img_size=True
    )
    return model


def build_model(
    architecture: str, num_classes: int, options: Mapping[str, Any] | None = None, pretrained: bool = False
) -> nn.Module:
    """A model of ``architecture`` with a ``num_classes``-way head, in train mode (segmentation: classes
    with background; detection: foreground classes, see ``worker.zoo.detection``).

    ``pretrained`` loads torchvision ImageNet weights (from the hub cache, downloaded once) and
    re-initialises the head for ``num_classes``; entries without such weights raise ValueError."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    from worker.tasks import get_runtime

    entry = _entry(architecture)
    opts = _check_options(entry, options or {})
    return get_runtime(entry.task).build_model(entry, num_classes, opts, pretrained)


def build_classifier(
    entry: CatalogEntry, num_classes: int, opts: dict[str, Any], pretrained: bool
) -> nn.Module:
    """A classifier of the catalog: the studio's tiny CNN, a torchvision or a timm model."""
    architecture = entry.name
    dropout = float(opts.get("dropout", 0.0))
    if entry.source == "studio":
        model: nn.Module = TinyCNN(num_classes=num_classes, dropout=dropout)
    elif entry.source == "torchvision":
        model = _build_torchvision(entry, num_classes, dropout)
    elif entry.source == "timm":
        model = _build_timm(entry, num_classes, dropout)
    else:
        raise ValueError(f"{architecture}: source {entry.source!r} is not buildable here")
    if pretrained:
        if not entry.pretrained_weights:
            raise ValueError(f"{architecture} has no pretrained weights the studio can load")
        _, unexpected = load_weights(model, pretrained_state(entry.pretrained_weights))
        if unexpected:
            raise ValueError(f"{architecture}: pretrained weights have unexpected keys {unexpected[:5]}")
    return model


_LIBRARY = {
    "timm": "timm",
    "segmentation_models_pytorch": "segmentation_models_pytorch",
    "transformers": "transformers",
}


def list_buildable(task: str | None = "classification") -> list[str]:
    """Names of the catalog entries of ``task`` (None: every task the zoo builds) this worker can build
    (their library is installed)."""
    import importlib.util

    names: list[str] = []
    from worker.tasks import RUNTIMES

    for entry in list_models(task):
        if entry.task not in RUNTIMES:
            continue
        library = _LIBRARY.get(entry.source)
        if library is not None and importlib.util.find_spec(library) is None:
            continue
        names.append(entry.name)
    return names


def load_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Load ``state_dict`` into ``model`` non-strictly; returns ``(missing, unexpected)`` key lists.

    Head tensors whose shape differs (another number of classes) are not loaded: the head is
    re-initialised and its keys are reported as missing. A shape mismatch anywhere else means the weights
    belong to another architecture and raises ValueError naming the first such key."""
    own = model.state_dict()
    heads: tuple[str, ...] = getattr(model, "studio_heads", None) or (head_name(model),)
    head_keys = {k for k in own if any(k.startswith(f"{h}.") for h in heads)}
    keep: dict[str, torch.Tensor] = {}
    reinit_head = False
    for key, value in state_dict.items():
        if key in own and tuple(own[key].shape) != tuple(value.shape):
            if key in head_keys:
                reinit_head = True
                continue
            raise ValueError(
                f"weights do not fit this model: {key} has shape {tuple(value.shape)}, "
                f"the model expects {tuple(own[key].shape)}"
            )
        keep[key] = value
    result = model.load_state_dict(keep, strict=False)
    if reinit_head:
        for head in heads:
            for module in model.get_submodule(head).modules():
                if isinstance(module, nn.Linear | nn.Conv2d):
                    module.reset_parameters()
    return list(result.missing_keys), list(result.unexpected_keys)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
