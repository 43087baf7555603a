"""Connecting to a Dask scheduler that runs (a profile of kind `address`), in one line or none.

Before a `Client` is made, the address is tried: a TCP connection (a refused port fails at once,
where Dask's client would retry until its timeout), then Dask's own handshake, with the
profile's TLS files (an address where something else answers, such as the dashboard's port, or
a scheduler that rejects the certificates, fails here with what it answered, instead of a
client half made and a traceback at exit). Plain TCP to another machine is warned about. Each
failure is one `ClusterError` line naming the address (and the profile file, if there is one).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
from typing import Any

from dagflow.clusters.profiles import AddressProfile
from dagflow.errors import ClusterError

log = logging.getLogger(__name__)


def connect(profile: AddressProfile) -> Any:
    """A `distributed.Client` connected to the profile's scheduler."""
    from distributed import Client
    from distributed.security import Security

    address = profile.address
    warning = insecure_address_warning(address)
    if warning:
        log.warning(warning)
    security = None
    if profile.tls is not None:
        security = Security(
            tls_ca_file=profile.tls.ca_file,
            tls_client_cert=profile.tls.cert,
            tls_client_key=profile.tls.key,
            require_encryption=True,
        )
    _reachable(profile)
    _hello(profile, security)
    try:
        return Client(
            address, security=security, set_as_default=False, timeout=f"{profile.timeout}s"
        )
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"{_where(profile)}cannot reach the Dask scheduler at {address}: {_one_line(exc)}"
        ) from None
    except Exception as exc:
        raise ClusterError(
            f"{profile.source}: cannot connect to {address}: {_one_line(exc)}"
        ) from None


def _reachable(profile: AddressProfile) -> None:
    """Fail at once when nothing listens at a TCP or TLS scheduler address."""
    from distributed.comm.addressing import parse_address, parse_host_port

    address = profile.address
    try:
        scheme, location = parse_address(address)
        if scheme not in ("tcp", "tls"):
            return
        host, port = parse_host_port(location)
    except ValueError as exc:
        raise ClusterError(f"{_where(profile)}{address!r}: {exc}") from None
    try:
        with socket.create_connection((host, port), timeout=profile.timeout):
            return
    except ConnectionRefusedError:
        reason = "connection refused (no scheduler listens there)"
    except socket.gaierror as exc:
        reason = f"cannot resolve host {host!r} ({exc.strerror})"
    except TimeoutError:
        reason = f"no answer within {profile.timeout:g}s"
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    raise ClusterError(
        f"{_where(profile)}cannot reach the Dask scheduler at {address}: {reason}"
    ) from None


def _hello(profile: AddressProfile, security: Any) -> None:
    """Dask's handshake with the address, in a thread of its own (any caller, any loop)."""
    from distributed.comm import connect as dask_connect

    kwargs = security.get_connection_args("client") if security is not None else {}
    failed: list[BaseException] = []

    async def hello() -> None:
        comm = await dask_connect(profile.address, timeout=profile.timeout, **kwargs)
        await comm.close()

    def run() -> None:
        try:
            asyncio.run(hello())
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=run, name="dagflow-hello", daemon=True)
    thread.start()
    thread.join(profile.timeout + 1.0)
    address = profile.address
    if thread.is_alive():
        raise ClusterError(
            f"{_where(profile)}{address} took the connection but did not answer as a Dask "
            f"scheduler within {profile.timeout:g}s"
        )
    if not failed:
        return
    error = failed[0]
    if isinstance(error, (OSError, TimeoutError)) and not isinstance(error, MemoryError):
        raise ClusterError(
            f"{_where(profile)}cannot reach the Dask scheduler at {address}: {_one_line(error)}"
        ) from None
    # Dask reads a frame length from the first bytes: what another service sends asks for EiB
    said = "what it sent is not Dask's protocol" if isinstance(error, MemoryError) else (
        _one_line(error)
    )  # fmt: skip
    raise ClusterError(
        f"{_where(profile)}{address} answered, but not as a Dask scheduler (is it another "
        f"service's port, such as the dashboard's?): {said}"
    ) from None


def _where(profile: AddressProfile) -> str:
    return "" if profile.source == profile.address else f"{profile.source}: address: "


def insecure_address_warning(address: str) -> str | None:
    """The warning for plain TCP to a scheduler that is not on this machine, else None."""
    from distributed.comm.addressing import get_address_host

    if not address.startswith(("tcp://", "ws://")):
        return None
    try:
        host = get_address_host(address)
    except ValueError:
        return None
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (
        f"connecting to {address} over plain TCP: traffic, including task code and data, is "
        "unencrypted and anyone who can reach the scheduler can run code on it; use a tls:// "
        "address with a profile of kind 'address' and tls: {ca_file, cert, key} "
        "(see clusters/remote-tls.yaml)"
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
