"""kombu's filesystem transport, with messages published whole.

kombu writes a message straight into the queue folder, so a consumer listing the folder can claim a file
the producer is still writing and fail to decode it, which stops the worker. Here the message is written
to a hidden temp file in the same folder and renamed into place: a consumer sees all of it or nothing.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        # The name kombu gives a message: consumers take files in name order and match the queue suffix.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        folder = str(self.data_folder_out)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".publishing-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(dumps(payload).encode())  # type: ignore[no-untyped-call]
            os.replace(tmp, os.path.join(folder, name))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


class Transport(filesystem.Transport):
    Channel = Channel


def install() -> None:
    """Make ``filesystem://`` broker URLs use this transport (in the API and in the worker)."""
    TRANSPORT_ALIASES["filesystem"] = f"{__name__}:Transport"
