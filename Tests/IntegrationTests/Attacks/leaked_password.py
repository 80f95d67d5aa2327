"""A client holding one node's leaked password (nats-py, independent of our libnats code) tries one attack
on the node's embedded server. Prints one JSON line: {"attack", "accepted", "detail"}. `accepted` is true
when the server did what was asked (the attack went through), false when it refused or never answered
(a permissions violation: the server drops the request and says so to the client)."""
import asyncio, json, sys

import nats

URL, USER, PASSWORD, ATTACK = sys.argv[1:5]
ARGUMENT = sys.argv[5] if len(sys.argv) > 5 else ""
STREAM = "harmonylite-changes-1"


async def main():
    errors = []

    async def on_error(error):
        errors.append(str(error))

    nc = await nats.connect(URL, user=USER, password=PASSWORD, name="leaked-password-attacker", error_cb=on_error, allow_reconnect=False, max_reconnect_attempts=0)

    async def api(subject, body=None):
        """A JetStream API request: (accepted, answer or reason)."""
        try:
            reply = await nc.request(subject, json.dumps(body).encode() if body is not None else b"", timeout=3)
        except Exception as error:  # a permissions violation leaves the request unanswered
            await asyncio.sleep(0.2)
            return False, "no answer (%s) %s" % (type(error).__name__, " | ".join(errors))
        try:
            answer = json.loads(reply.data or b"{}")
        except ValueError:  # a message, not an API answer (a fetch from a consumer)
            return True, {"message": reply.subject}
        return ("error" not in answer), answer

    async def stream_config(name):
        accepted, info = await api("$JS.API.STREAM.INFO." + name)
        if not accepted:
            raise SystemExit(json.dumps({"attack": ATTACK, "accepted": False, "detail": "cannot read the stream: %s" % info}))
        return info["config"]

    async def update(change):
        config = await stream_config(STREAM)
        change(config)
        return await api("$JS.API.STREAM.UPDATE." + STREAM, config)

    async def publish_acked(subject, payload, headers=None):
        try:
            reply = await nc.request(subject, payload, timeout=3, headers=headers)
        except Exception as error:
            await asyncio.sleep(0.2)
            return False, "no acknowledgement (%s) %s" % (type(error).__name__, " | ".join(errors))
        answer = json.loads(reply.data or b"{}")
        return ("error" not in answer), answer

    if ATTACK == "republish":
        # A stream on a subject the user may publish on, republishing into node 2's change subject.
        accepted, answer = await api("$JS.API.STREAM.CREATE.evil-republish", {
            "name": "evil-republish", "subjects": ["_INBOX.evil-republish"], "storage": "memory",
            "republish": {"src": "_INBOX.evil-republish", "dest": "harmonylite-change-log-1.2"}})
        if accepted:
            payload = bytes.fromhex(ARGUMENT)
            published, answer2 = await publish_acked("_INBOX.evil-republish", payload)
            answer = {"create": answer, "publish": answer2, "published": published}
    elif ATTACK == "republish-own":
        # As the administrator: a republishing stream onto node 1's own subject, the batch claiming node 1
        # (the subject confirms it); only the republish headers tell.
        accepted, answer = await api("$JS.API.STREAM.CREATE.republisher", {
            "name": "republisher", "subjects": ["republisher.in"], "storage": "memory",
            "republish": {"src": "republisher.in", "dest": "harmonylite-change-log-1.1"}})
        if accepted:
            published, answer2 = await publish_acked("republisher.in", bytes.fromhex(ARGUMENT))
            answer = {"create": answer, "publish": answer2}
            accepted = accepted and published
    elif ATTACK == "sources":
        # A stream of the user's own, then the change stream made to source it.
        created, answer = await api("$JS.API.STREAM.CREATE.evil-source", {"name": "evil-source", "subjects": ["_INBOX.evil-source"], "storage": "memory"})
        accepted, answer2 = await update(lambda c: c.update({"sources": [{"name": "evil-source"}]}))
        answer = {"create": answer, "update": answer2}
    elif ATTACK == "mirror":
        accepted, answer = await api("$JS.API.STREAM.CREATE.evil-mirror", {"name": "evil-mirror", "mirror": {"name": STREAM}, "storage": "memory"})
    elif ATTACK == "max-msgs":
        accepted, answer = await update(lambda c: c.update({"max_msgs": 1}))
    elif ATTACK == "subjects":
        accepted, answer = await update(lambda c: c.update({"subjects": ["evil.nothing"]}))
    elif ATTACK == "seal":
        accepted, answer = await update(lambda c: c.update({"sealed": True}))
    elif ATTACK == "rollup":
        accepted, answer = await update(lambda c: c.update({"allow_rollup_hdrs": True}))
        if accepted:
            published, answer2 = await publish_acked("harmonylite-change-log-1.1", b"\x01\x00", headers={"Nats-Rollup": "all"})
            answer = {"update": answer, "rollup": answer2, "published": published}
    elif ATTACK == "purge":
        accepted, answer = await api("$JS.API.STREAM.PURGE." + STREAM, {})
    elif ATTACK == "message-delete":
        accepted, answer = await api("$JS.API.STREAM.MSG.DELETE." + STREAM, {"seq": int(ARGUMENT or "1")})
    elif ATTACK == "stream-delete":
        accepted, answer = await api("$JS.API.STREAM.DELETE." + STREAM)
    elif ATTACK == "consumer-delete":
        # Node 2's consumer of shard 1 (ARGUMENT: its name, or empty to look it up).
        name = ARGUMENT
        if not name:
            ok, names = await api("$JS.API.CONSUMER.NAMES." + STREAM, {})
            candidates = [n for n in (names.get("consumers") or []) if n.startswith("harmonylite-node-2-1")] if ok else []
            name = candidates[0] if candidates else "harmonylite-node-2-1-0000000000000000"
        accepted, answer = await api("$JS.API.CONSUMER.DELETE.%s.%s" % (STREAM, name))
        answer = {"consumer": name, "answer": answer}
    elif ATTACK == "consumer-steal":
        # Fetch from node 2's consumer (its messages would never reach node 2).
        accepted, answer = await api("$JS.API.CONSUMER.MSG.NEXT.%s.%s" % (STREAM, ARGUMENT), {"batch": 1, "no_wait": True})
    elif ATTACK == "kv-other-node":
        accepted, answer = await publish_acked("$KV.harmonylite-schema-registry.node-2", b"{}")
    elif ATTACK == "kv-create-bucket":
        accepted, answer = await api("$JS.API.STREAM.CREATE.KV_evil", {"name": "KV_evil", "subjects": ["$KV.evil.>"], "max_msgs_per_subject": 1})
    elif ATTACK == "kv-delete-bucket":
        accepted, answer = await api("$JS.API.STREAM.DELETE.KV_harmonylite-schema-registry")
    elif ATTACK == "object-other-bucket":
        accepted, answer = await publish_acked("$O.evil.M.x", b"{}")
        if not accepted:
            accepted, answer = await api("$JS.API.STREAM.CREATE.OBJ_evil", {"name": "OBJ_evil", "subjects": ["$O.evil.C.>", "$O.evil.M.>"]})
    elif ATTACK == "object-delete-bucket":
        accepted, answer = await api("$JS.API.STREAM.DELETE.OBJ_harmonylite-changes-snapshot-store")
    elif ATTACK == "inbox-reply":
        # A forged reply on another client's inbox (answers to node 2's API requests, say).
        try:
            await nc.publish("_INBOX.someone-else.1", b'{"type":"io.nats.jetstream.api.v1.stream_info_response"}')
            await nc.flush(timeout=2)
            await asyncio.sleep(0.5)
        except Exception as error:
            errors.append(str(error))
        accepted = not any("ermissions" in e for e in errors)
        answer = " | ".join(errors)
    else:
        raise SystemExit("unknown attack " + ATTACK)
    print(json.dumps({"attack": ATTACK, "accepted": bool(accepted), "detail": str(answer)[:600]}))
    await nc.close()


asyncio.run(main())
