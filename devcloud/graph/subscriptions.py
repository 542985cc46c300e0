"""Change notifications for `/chats/{id}/messages` (delegated), delivered by POST with retries.

Creating a subscription validates the notification URL (and the lifecycle URL) with Graph's
handshake: a POST with `validationToken` that must be echoed as text/plain within 10 seconds.
Notifications carry `clientState`; a failed delivery is retried with doubling delays. Lifecycle
events (`reauthorizationRequired`, `subscriptionRemoved`) go to `lifecycleNotificationUrl`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import ssl
import time
import uuid
from collections import deque
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from devcloud.graph import resources as res
from devcloud.graph.api import Call, Reply, route
from devcloud.graph.auth import require_teams
from devcloud.graph.chats import READ_MESSAGES
from devcloud.graph.errors import GraphError
from devcloud.graph.store import Chat, Message
from devcloud.state import State

log = logging.getLogger("devcloud.graph.subscriptions")
RESOURCE = re.compile(r"^/?(?:chats/([^/()']+)|chats\('([^']+)'\))/messages$")
CHANGE_TYPES = {"created", "updated", "deleted"}
MAX_MINUTES = 4320  # chatMessage subscriptions: under three days
LIFECYCLE_REQUIRED_AFTER_MINUTES = 60
VALIDATION_TIMEOUT = 10.0
_tasks: set[asyncio.Task[None]] = set()
_clients: dict[int, httpx.AsyncClient] = {}
deliveries: deque[dict[str, Any]] = deque(maxlen=5000)


def _bad(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)


def _client(state: State) -> httpx.AsyncClient:
    """One client per event loop, trusting the system's CAs and devcloud's own."""
    loop_id = id(asyncio.get_running_loop())
    if loop_id not in _clients:
        context = ssl.create_default_context(cafile=str(state.state_dir / "ca-bundle.pem"))
        _clients[loop_id] = httpx.AsyncClient(verify=context, trust_env=False, follow_redirects=False)
    return _clients[loop_id]


# validation -----------------------------------------------------------------------------
def _https_url(value: Any, name: str) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme != "https" or not urlsplit(value).netloc:
        raise _bad(f"{name} must be an https URL.", "ValidationError")
    return value


def _expiration(value: Any, lifecycle_url: str | None) -> int:
    if not isinstance(value, str):
        raise _bad("expirationDateTime is required.")
    try:
        expires = int(res.parse_iso(value))
    except ValueError as exc:
        raise _bad(f"expirationDateTime '{value}' is not a valid DateTimeOffset.") from exc
    minutes = (expires - time.time() * 1000) / 60_000
    if minutes <= 0:
        raise _bad("Subscription expiration must be in the future.", "ExtensionError")
    if minutes > MAX_MINUTES:
        raise _bad(f"Subscription expiration can only be {MAX_MINUTES} minutes in the future.", "ExtensionError")
    if minutes > LIFECYCLE_REQUIRED_AFTER_MINUTES and not lifecycle_url:
        raise _bad(
            "lifecycleNotificationUrl is a required property for subscription creation on this resource when the "
            "expirationDateTime value is set to greater than 1 hour.",
            "ValidationError",
        )
    return expires


async def _handshake(state: State, url: str) -> None:
    token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
    entry = {"kind": "validation", "url": url, "time": time.time()}
    deliveries.append(entry)
    prefix = "Subscription validation request failed."
    try:
        response = await _client(state).post(
            url,
            params={"validationToken": token},
            headers={"Content-Type": "text/plain; charset=utf-8"},
            timeout=VALIDATION_TIMEOUT,
        )
    except httpx.TimeoutException as exc:
        entry["status"] = "timeout"
        raise _bad("Subscription validation request timed out.", "ValidationError") from exc
    except httpx.HTTPError as exc:
        entry["status"] = "unreachable"
        raise _bad(
            f"{prefix} Notification endpoint must be reachable: {type(exc).__name__}.", "ValidationError"
        ) from exc
    entry["status"] = response.status_code
    if response.status_code != 200:
        raise _bad(f"{prefix} Notification endpoint must respond with 200 OK to validation request.", "ValidationError")
    if not response.headers.get("content-type", "").startswith("text/plain"):
        raise _bad(f"{prefix} Response must be text/plain.", "ValidationError")
    if response.text != token:
        raise _bad(f"{prefix} Response must exactly match validationToken query parameter.", "ValidationError")


# resources ------------------------------------------------------------------------------
def _resource(sub: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": sub["id"],
        "resource": sub["resource"],
        "applicationId": sub["applicationId"],
        "changeType": sub["changeType"],
        "clientState": sub["clientState"],
        "notificationUrl": sub["notificationUrl"],
        "notificationQueryOptions": None,
        "lifecycleNotificationUrl": sub["lifecycleNotificationUrl"],
        "expirationDateTime": res.iso(sub["expires_ms"]),
        "creatorId": sub["creatorId"],
        "includeResourceData": False,
        "latestSupportedTlsVersion": "v1_2",
        "encryptionCertificate": None,
        "encryptionCertificateId": None,
        "notificationUrlAppId": None,
    }


def live(state: State) -> dict[str, dict[str, Any]]:
    """The subscriptions; expired ones are gone, as in Graph."""
    now = time.time() * 1000
    for sub_id in [k for k, s in state.subscriptions.items() if s["expires_ms"] <= now]:
        del state.subscriptions[sub_id]
    return state.subscriptions


def _visible(sub: dict[str, Any], who: Any) -> bool:
    """The app's own subscriptions in the caller's tenant; with a user token, the user's own."""
    same_app = sub["applicationId"] == who.client_id and sub["tenantId"] == who.tenant_id
    return same_app and (who.user is None or sub["creatorId"] == who.user.id)


def _own(call: Call, sub_id: str | None = None) -> dict[str, Any]:
    sub = live(call.state).get(sub_id or call.params["sub_id"])
    if sub is None or not _visible(sub, call.caller):
        raise GraphError(404, "ResourceNotFound", "The object was not found.")
    return sub


# handlers -------------------------------------------------------------------------------
@route("POST", "/subscriptions")
async def create_subscription(call: Call) -> Reply:
    user = require_teams(call.caller, *READ_MESSAGES)
    body = call.body if isinstance(call.body, dict) else {}
    if body.get("includeResourceData") and not (
        body.get("encryptionCertificate") and body.get("encryptionCertificateId")
    ):
        raise _bad(
            "encryptionCertificate and encryptionCertificateId are required when includeResourceData is true.",
            "ValidationError",
        )
    if body.get("includeResourceData"):
        raise _bad("Rich notifications (includeResourceData) are not supported in devcloud.", "InvalidRequest")
    match = RESOURCE.match(unquote(str(body.get("resource", ""))))
    if not match:
        raise _bad("Only '/chats/{id}/messages' subscriptions are supported in devcloud.", "InvalidRequest")
    chat = call.state.chats.chat(match.group(1) or match.group(2))
    if chat is None or user.id not in chat.members:
        raise GraphError(403, "Forbidden", "Forbidden: the user is not a member of this chat.")
    changes = [c.strip() for c in str(body.get("changeType", "")).split(",") if c.strip()]
    if not changes or set(changes) - CHANGE_TYPES:
        raise _bad("changeType must be a comma-separated list of created, updated and deleted.", "InvalidRequest")
    url = _https_url(body.get("notificationUrl"), "notificationUrl")
    lifecycle = body.get("lifecycleNotificationUrl")
    lifecycle = _https_url(lifecycle, "lifecycleNotificationUrl") if lifecycle else None
    expires = _expiration(body.get("expirationDateTime"), lifecycle)
    client_state = body.get("clientState")
    if client_state is not None and (not isinstance(client_state, str) or len(client_state) > 128):
        raise _bad("clientState must be a string of at most 128 characters.")
    _quota(call, chat)
    generation = call.state.generation
    await _handshake(call.state, url)
    if lifecycle:
        await _handshake(call.state, lifecycle)
    if call.state.generation != generation:  # devcloud was reset meanwhile
        raise GraphError(404, "NotFound", f"Chat '{chat.id}' was not found.")
    _quota(call, chat)
    sub = {
        "id": str(uuid.uuid4()),
        "resource": body["resource"],
        "chat_id": chat.id,
        "applicationId": call.caller.client_id,
        "creatorId": user.id,
        "tenantId": user.tenant_id,
        "changeType": ",".join(changes),
        "clientState": client_state,
        "notificationUrl": url,
        "lifecycleNotificationUrl": lifecycle,
        "expires_ms": expires,
        "reauthorization_required": False,
    }
    call.state.subscriptions[sub["id"]] = sub
    call.state.save()
    return Reply(201, {**call.context("subscriptions/$entity"), **_resource(sub)})


def _quota(call: Call, chat: Chat) -> None:
    """Graph allows one subscription per app and chat."""
    taken = any(
        s["chat_id"] == chat.id and s["applicationId"] == call.caller.client_id for s in live(call.state).values()
    )
    if taken:
        raise GraphError(
            403,
            "ExtensionError",
            "Operation: Create; Exception: [Status Code: Forbidden; Reason: The app has reached its subscription limit for this chat.]",
        )


@route("GET", "/subscriptions")
async def list_subscriptions(call: Call) -> Reply:
    who = call.caller
    mine = [_resource(s) for s in live(call.state).values() if _visible(s, who)]
    return Reply(200, {**call.context("subscriptions"), "value": mine})


@route("GET", "/subscriptions/{sub_id}")
async def get_subscription(call: Call) -> Reply:
    return Reply(200, {**call.context("subscriptions/$entity"), **_resource(_own(call))})


@route("PATCH", "/subscriptions/{sub_id}")
async def renew_subscription(call: Call) -> Reply:
    sub = _own(call)
    body = call.body if isinstance(call.body, dict) else {}
    if "expirationDateTime" not in body and "notificationUrl" not in body:
        raise _bad("Nothing to update: give expirationDateTime or notificationUrl.")
    url = _https_url(body["notificationUrl"], "notificationUrl") if "notificationUrl" in body else None
    expires = (
        _expiration(body["expirationDateTime"], sub["lifecycleNotificationUrl"])
        if "expirationDateTime" in body
        else None
    )
    if url is not None:
        await _handshake(call.state, url)
        sub = _own(call, sub["id"])  # still there after the handshake?
        sub["notificationUrl"] = url
    if expires is not None:
        sub["expires_ms"] = expires
    sub["reauthorization_required"] = False
    call.state.save()
    return Reply(200, {**call.context("subscriptions/$entity"), **_resource(sub)})


@route("POST", "/subscriptions/{sub_id}/reauthorize")
async def reauthorize_subscription(call: Call) -> Reply:
    sub = _own(call)
    sub["reauthorization_required"] = False
    call.state.save()
    return Reply(204)


@route("DELETE", "/subscriptions/{sub_id}")
async def delete_subscription(call: Call) -> Reply:
    sub = _own(call)
    del call.state.subscriptions[sub["id"]]
    call.state.save()
    return Reply(204)


# delivery -------------------------------------------------------------------------------
def attach(state: State) -> None:
    """Deliver notifications for every change the chat store makes."""

    def changed(chat: Chat, message: Message, change: str) -> None:
        if not state.subscriptions:
            return
        for sub in list(live(state).values()):
            if (
                sub["chat_id"] == chat.id
                and change in sub["changeType"].split(",")
                and not sub["reauthorization_required"]
            ):
                _spawn(_deliver(state, sub, sub["notificationUrl"], _notification(sub, chat, message, change), change))

    state.chats.listeners.append(changed)


def _spawn(coroutine: Any) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def _notification(sub: dict[str, Any], chat: Chat, message: Message, change: str) -> dict[str, Any]:
    path = f"chats('{chat.id}')/messages('{message.id}')"
    return {
        "value": [
            {
                "subscriptionId": sub["id"],
                "subscriptionExpirationDateTime": res.iso(sub["expires_ms"]),
                "changeType": change,
                "resource": path,
                "resourceData": {"id": message.id, "@odata.type": "#Microsoft.Graph.chatMessage", "@odata.id": path},
                "clientState": sub["clientState"],
                "tenantId": sub["tenantId"],
            }
        ]
    }


def lifecycle(state: State, sub: dict[str, Any], event: str) -> None:
    """Send a lifecycle event (when the subscription has a lifecycle URL)."""
    if not sub["lifecycleNotificationUrl"]:
        return
    payload = {
        "value": [
            {
                "subscriptionId": sub["id"],
                "subscriptionExpirationDateTime": res.iso(sub["expires_ms"]),
                "tenantId": sub["tenantId"],
                "clientState": sub["clientState"],
                "lifecycleEvent": event,
            }
        ]
    }
    _spawn(_deliver(state, sub, sub["lifecycleNotificationUrl"], payload, event))


def _still_wanted(state: State, sub: dict[str, Any], kind: str) -> bool:
    """Graph stops retrying once a subscription is gone (its removal event excepted) or paused."""
    if kind == "subscriptionRemoved":
        return True
    current = live(state).get(sub["id"])
    return current is not None and (kind == "reauthorizationRequired" or not current["reauthorization_required"])


def cancel_deliveries() -> None:
    """Drop pending deliveries and retries (devcloud's reset)."""
    for task in list(_tasks):
        task.cancel()
    deliveries.clear()


async def _deliver(state: State, sub: dict[str, Any], url: str, payload: dict[str, Any], kind: str) -> None:
    attempts = int(state.settings["graph_notification_attempts"])
    delay = float(state.settings["graph_notification_backoff"])
    for attempt in range(1, attempts + 1):
        if not _still_wanted(state, sub, kind):
            return
        entry = {"kind": kind, "subscription": sub["id"], "url": url, "attempt": attempt, "time": time.time()}
        deliveries.append(entry)
        try:
            response = await _client(state).post(
                url, json=payload, timeout=float(state.settings["graph_notification_timeout"])
            )
            entry["status"] = response.status_code
            if 200 <= response.status_code < 300:
                return
        except httpx.HTTPError as exc:
            entry["status"] = type(exc).__name__
        if attempt < attempts:
            await asyncio.sleep(delay * 2 ** (attempt - 1))
    log.warning("notification for subscription %s to %s dropped after %d attempts", sub["id"], url, attempts)


def expire_now(state: State, sub: dict[str, Any]) -> None:
    sub["expires_ms"] = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    live(state)
    state.save()
