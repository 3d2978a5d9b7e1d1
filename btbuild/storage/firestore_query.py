"""Bulk Firestore queries read from the raw protobuf responses, on a channel of their own.

A no-op analysis streams every cell document of the plan's date range
(btbuild/storage/firestore_cells.py), one streamed response per document. Through
``Query.stream()`` each document costs about 0.2 ms of client time: a thread hand-off per
response inside gRPC, a proto-plus wrapper, then every field decoded into a
:class:`DocumentSnapshot`. :func:`documents` sends the same ``RunQuery`` request and reads
only the string and bytes fields asked for from each response's protobuf, and the backend's
client runs on a channel with gRPC's ``SingleThreadedUnaryStream`` option
(:func:`single_threaded_streams`: streamed responses are read on the calling thread, no
hand-off): about 15 us of client CPU per document instead of 50-60 (the emulator, 637
documents). The channel is made as the library makes its own (the emulator's host and
token, or the API endpoint and the client's credentials); the request is built by the
library (``Query._to_protobuf``, ``_parent_info``: internal, but what
``Query.stream`` itself sends). ``tests/storage/test_storage_firestore.py`` checks it returns
what ``Query.stream`` returns, so a client upgrade that changes these internals fails there.
:class:`Started` sends the request and reads its responses on a thread of its own (a
build's no-op analysis starts its queries before it hashes its code, and the responses are
read as they arrive, while it hashes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

TIMEOUT = 300.0  # seconds, the library's own deadline for RunQuery
# transient errors: sent again after 0.1 s, 1.3x longer each time (at most 60 s), for up to
# 300 s in all: the library's retry policy for RunQuery
RETRY_FIRST, RETRY_FACTOR, RETRY_LONGEST, RETRY_DEADLINE = 0.1, 1.3, 60.0, 300.0
_MESSAGE_SIZE = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]

Fields = dict[str, str | bytes | None]


def single_threaded_streams(client: Any) -> None:
    """Give ``client`` (before its first call) the GAPIC client the library would make
    (base_client._firestore_api_helper: the emulator's host and token, or the API endpoint
    and the client's credentials), its channel reading streamed responses on the calling
    thread. Every call of the client shares that one channel."""
    if getattr(client, "_firestore_api_internal", True) is not None:
        return  # already connected, or not a google.cloud.firestore.Client
    import grpc
    from google.cloud.firestore_v1.services.firestore import client as client_module
    from google.cloud.firestore_v1.services.firestore.transports import grpc as transports

    options = [*_MESSAGE_SIZE, (grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1)]
    transport = transports.FirestoreGrpcTransport
    if client._emulator_host is not None:  # insecure, as the library talks to the emulator
        channel = grpc.insecure_channel(client._emulator_host, options=options)
    else:
        channel = transport.create_channel(
            client._target,
            credentials=client._credentials,
            options=[("grpc.keepalive_time_ms", 30000), *options],
        )
    client._transport = transport(host=client._target, channel=channel)
    client._firestore_api_internal = client_module.FirestoreClient(
        transport=client._transport, client_options=client._client_options
    )


def documents(client: Any, query: Any, fields: Iterable[str]) -> list[tuple[str, Fields]]:
    """(document id, {field: value}) of every document ``query`` returns, for the string and
    bytes ``fields`` asked for (a field of any other type, or missing, reads as None)."""
    return Started(client, query, fields).read()


class Started:
    """A ``RunQuery`` sent now and read now, on a thread of its own, while the caller does
    something else (a build hashes its code); :meth:`read` gives what it read. The thread
    waits for the connection (the first call on a new channel: 15-20 ms on the emulator, a
    TLS handshake on Google Cloud) and for each response in gRPC's core without the GIL, so
    the caller runs meanwhile; it takes the GIL only to take the asked fields out of each
    response as it arrives (:func:`_read`). The GAPIC wrapper of ``run_query`` would wait
    for the first response (its stream wrapper peeks at it), so the call is made on the
    client's own channel (:func:`_run_query`), with the metadata and deadline the wrapper
    adds; errors are retried and mapped as the wrapper does, on the caller's thread."""

    def __init__(self, client: Any, query: Any, fields: Iterable[str]) -> None:
        from google.api_core import gapic_v1
        from google.cloud.firestore_v1.services.firestore.transports import base
        from google.cloud.firestore_v1.types import firestore as pb_types

        routing: Any = gapic_v1.routing_header  # untyped
        info: Any = base.DEFAULT_CLIENT_INFO

        parent, _prefix = query._parent._parent_info()
        self.request = pb_types.RunQueryRequest(
            parent=parent, structured_query=query._to_protobuf()
        )
        self.fields = tuple(fields)
        self._call = _run_query(client._firestore_api._transport)
        self._metadata = (
            *client._rpc_metadata,
            routing.to_grpc_metadata((("parent", parent),)),
            info.to_grpc_metadata(),
        )
        self._found: list[tuple[str, Fields]] | BaseException | None = None
        self._reading = threading.Thread(target=self._read_now, name="btbuild-query", daemon=True)
        self._reading.start()

    def _read_now(self) -> None:
        try:
            self._found = _read(self._send(), self.fields)
        except BaseException as exc:  # raised again by read(), on the caller's thread
            self._found = exc

    def _send(self) -> Any:
        return self._call(self.request, timeout=TIMEOUT, metadata=self._metadata)

    def read(self) -> list[tuple[str, Fields]]:
        """The documents (see :func:`documents`). A transient error (the ones the library
        retries, and ``Query.stream`` resumes after), before the first response or in the
        middle of the stream, sends the query again and reads it from the start, backing off
        as the library does (``RETRY_*``); after that, or on any other error, it is raised
        as the library raises it."""
        import grpc
        from google.api_core import exceptions as api

        mapped: Any = api.from_grpc_error  # untyped
        transient = (api.ServiceUnavailable, api.InternalServerError, api.DeadlineExceeded)
        delay, deadline = RETRY_FIRST, time.monotonic() + RETRY_DEADLINE
        self._reading.join()
        found = self._found
        while True:
            try:
                try:
                    if isinstance(found, BaseException):
                        raise found
                    assert found is not None  # (the thread has ended)
                    return found
                except grpc.RpcError as exc:
                    raise mapped(exc) from exc
            except transient:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * RETRY_FACTOR, RETRY_LONGEST)
                try:
                    found = _read(self._send(), self.fields)
                except grpc.RpcError as exc:
                    found = exc


def _run_query(transport: Any) -> Any:
    """The RunQuery method of ``transport``'s channel, its responses read as raw protobuf
    messages (the transport's own stub wraps each in a proto-plus message, which the reader
    unwraps again: ~3 ms of client CPU per 637 documents); made once per transport."""
    call = getattr(transport, "_btbuild_run_query", None)
    if call is None:
        from google.cloud.firestore_v1.types import firestore as pb_types

        call = transport.grpc_channel.unary_stream(
            "/google.firestore.v1.Firestore/RunQuery",
            request_serializer=pb_types.RunQueryRequest.serialize,
            response_deserializer=pb_types.RunQueryResponse.pb().FromString,
        )
        transport._btbuild_run_query = call
    return call


def _read(responses: Iterable[Any], wanted: tuple[str, ...]) -> list[tuple[str, Fields]]:
    found: list[tuple[str, Fields]] = []
    for message in responses:
        if message.HasField("document"):
            document = message.document
            values = document.fields
            found.append(
                (
                    document.name.rpartition("/")[2],
                    {name: _plain(values[name]) if name in values else None for name in wanted},
                )
            )
    return found


def _plain(value: Any) -> str | bytes | None:
    kind = value.WhichOneof("value_type")
    if kind == "string_value":
        return str(value.string_value)
    if kind == "bytes_value":
        return bytes(value.bytes_value)
    return None
