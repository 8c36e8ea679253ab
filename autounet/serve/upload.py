"""Receive a multipart upload into a private folder, enforcing the size limit while the body streams in.

Uploaded files are written as ``upload_0000``, ``upload_0001``, ... in the request's private folder: the names the
client sent are kept only to be shown in messages, never used as paths. Form fields other than ``file`` are small
options, held in memory up to a few kilobytes each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from autounet.serve.errors import ServeError

#: The form field that carries image files (one per channel, in channel order).
FILE_FIELD = "file"
#: Option fields are short values; anything longer is not an option.
MAX_FIELD_BYTES = 4096
MAX_FIELDS = 32
#: Names shown in messages are cut to this many characters.
_SHOWN_NAME_CHARS = 80


@dataclass
class UploadedFile:
    """One uploaded file: where the server stored it and what the client called it (for messages only)."""

    index: int
    path: Path
    client_name: str
    size: int = 0

    @property
    def label(self) -> str:
        """How messages name this file: ``upload 'scan.nii.gz'`` (or ``upload #2`` without a name)."""
        if self.client_name:
            shown = self.client_name if len(self.client_name) <= _SHOWN_NAME_CHARS else self.client_name[:_SHOWN_NAME_CHARS] + "..."
            return f"upload {shown!r}"
        return f"upload #{self.index + 1}"


@dataclass
class Upload:
    """Files and option fields of one request."""

    files: list[UploadedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    bytes_received: int = 0


def check_content_length(request: Request, max_bytes: int) -> None:
    """Refuse a request whose declared ``Content-Length`` is over the limit before reading any of it.

    Parameters
    ----------
    request : Request
        The incoming request.
    max_bytes : int
        The upload limit.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)


async def receive_upload(request: Request, folder: Path, max_bytes: int, max_files: int, known_fields: tuple[str, ...]) -> Upload:
    """Stream a ``multipart/form-data`` body into ``folder``.

    Parameters
    ----------
    request : Request
        The incoming request.
    folder : Path
        The request's private folder (already created, mode 0700).
    max_bytes : int
        Largest body accepted; counted while it streams, so a body without ``Content-Length`` is bounded too.
    max_files : int
        Most ``file`` parts accepted.
    known_fields : tuple of str
        Option fields accepted besides ``file``.

    Returns
    -------
    Upload

    Raises
    ------
    ServeError
        415 for a body that is not multipart, 413 beyond ``max_bytes``, 400 for a malformed or interrupted body,
        422 for unknown or oversized fields, too many files or none.
    """
    content_type, parameters = parse_options_header(request.headers.get("content-type", ""))
    boundary = parameters.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ServeError(
            415, "not_multipart",
            "send the image as multipart/form-data with the file in the form field 'file' (curl -F file=@scan.nii.gz)",
        )
    check_content_length(request, max_bytes)
    receiver = _PartReceiver(folder, max_files, known_fields)
    try:
        parser = MultipartParser(boundary, receiver.callbacks())
    except (FormParserError, ValueError) as err:
        raise ServeError(400, "malformed_multipart", f"the multipart body cannot be parsed ({err})") from None
    upload = receiver.upload
    try:
        async for chunk in request.stream():
            upload.bytes_received += len(chunk)
            if upload.bytes_received > max_bytes:
                raise _too_large(upload.bytes_received, max_bytes, streaming=True)
            parser.write(chunk)
        parser.finalize()
    except ClientDisconnect:
        raise ServeError(400, "client_disconnected", "the client disconnected during the upload") from None
    except FormParserError as err:
        raise ServeError(400, "malformed_multipart", f"the multipart body cannot be parsed ({err})") from None
    finally:
        receiver.close()
        request.state.upload_bytes = upload.bytes_received
    if not receiver.ended:
        raise ServeError(400, "incomplete_upload", "the multipart body ends early (the upload was interrupted); send it again")
    if not upload.files:
        raise ServeError(422, "no_file", "no image in the request: put it in the form field 'file' (curl -F file=@scan.nii.gz)")
    return upload


def _too_large(size: int, max_bytes: int, streaming: bool = False) -> ServeError:
    amount = f"more than {max_bytes / 2**20:,.1f}" if streaming else f"{size / 2**20:,.1f}"
    return ServeError(
        413, "upload_too_large",
        f"the upload is {amount} MB but this server accepts at most {max_bytes / 2**20:,.1f} MB "
        "(autounet serve --max-upload-mb); send a compressed file (.nii.gz) or ask the administrator to raise the limit",
    )


class _PartReceiver:
    """Callbacks of the streaming multipart parser: file parts go to disk, option fields to memory."""

    def __init__(self, folder: Path, max_files: int, known_fields: tuple[str, ...]) -> None:
        self.folder = folder
        self.max_files = max_files
        self.known_fields = known_fields
        self.upload = Upload()
        self.ended = False
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._file: BinaryIO | None = None
        self._current: UploadedFile | None = None
        self._field_name: str | None = None
        self._field_value = bytearray()

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._header_field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _part_begin(self) -> None:
        self._headers = {}
        self._field_name = None
        self._field_value = bytearray()

    def _header_end(self) -> None:
        self._headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if disposition != b"form-data" or not name:
            raise ServeError(400, "malformed_multipart", "a part of the body has no form-data name; send a regular form")
        if name == FILE_FIELD:
            if len(self.upload.files) >= self.max_files:
                raise ServeError(422, "too_many_files", f"more than {self.max_files} files in one request; send one file "
                                 "per channel of one case")
            index = len(self.upload.files)
            client_name = options.get(b"filename", b"").decode("utf-8", "replace")
            path = self.folder / f"upload_{index:04d}"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            self._file = os.fdopen(descriptor, "wb")
            self._current = UploadedFile(index, path, client_name)
            self.upload.files.append(self._current)
            return
        if name not in self.known_fields:
            raise ServeError(422, "unknown_field", f"unknown form field {name[:40]!r}; known: {FILE_FIELD}, "
                             f"{', '.join(self.known_fields)}")
        if len(self.upload.fields) >= MAX_FIELDS:
            raise ServeError(422, "too_many_fields", f"more than {MAX_FIELDS} form fields")
        self._field_name = name

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None and self._current is not None:
            self._file.write(data[start:end])
            self._current.size += end - start
            return
        self._field_value.extend(data[start:end])
        if len(self._field_value) > MAX_FIELD_BYTES:
            raise ServeError(422, "field_too_large", f"form field {self._field_name!r} is longer than {MAX_FIELD_BYTES} "
                             "bytes; options are short values (e.g. folds=0,1)")

    def _part_end(self) -> None:
        if self._file is not None:
            self.close()
            self._current = None
            return
        if self._field_name is not None:
            self.upload.fields[self._field_name] = self._field_value.decode("utf-8", "replace").strip()

    def _end(self) -> None:
        self.ended = True
