"""Drives MQTT clients (paho-mqtt, 3.1.1 or 5) through a scripted scenario for the
end-to-end tests, and prints what each client saw as one JSON document.

Usage: python3 mqtt_scenario.py <port> '<steps as JSON>'

Steps (each a JSON object with "op"):
  connect    name, id, v (4|5), clean (bool), user, password, keepalive, will {topic,
             payload, qos, retain}, props {session_expiry, receive_max, max_packet,
             topic_alias_max}, tls {ca, cert, key}, manual_ack (bool)
  sub        name, filter, qos, [no_local, sub_id]
  unsub      name, filter
  pub        name, topic, payload, qos, retain, [props {user, response_topic,
             correlation, expiry, alias}], [wait_ack]
  wait_msgs  name, count, timeout  (waits until `name` received `count` messages)
  sleep      secs
  pause      prints "PAUSE" and waits for a line on stdin (the test acts meanwhile)
  disconnect name, [reason]
  drop       name  (closes the socket without DISCONNECT, so the will is sent)
  ack        name, count  (with manual_ack: PUBACKs the oldest `count` unacknowledged)
  stall      name, secs  (stops the client's network loop, so no PINGREQ goes out)
  wait_disconnect name, timeout  (waits until the server ended `name`'s connection)
  mark       name, label  (records how many messages `name` has received so far)

Output: {"<name>": {"connack": rc, "session_present": b, "subacks": [...],
         "unsubacks": [...], "msgs": [{topic, payload, qos, retain, dup, props}],
         "pubacks": [...], "disconnect": rc, "marks": {label: count}}}
"""

import json
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

PORT = int(sys.argv[1])
STEPS = json.loads(sys.argv[2])
clients = {}
seen = {}
unacked = {}


def record(name):
    return seen.setdefault(
        name,
        {"connack": None, "session_present": None, "subacks": [], "unsubacks": [], "msgs": [], "pubacks": [],
         "disconnect": None},
    )


def rc_value(rc):
    return rc.value if hasattr(rc, "value") else int(rc)


def props_of(p):
    if p is None:
        return {}
    out = {}
    for key in ("UserProperty", "ResponseTopic", "CorrelationData", "MessageExpiryInterval",
                "SubscriptionIdentifier", "ContentType", "TopicAlias"):
        if hasattr(p, key):
            v = getattr(p, key)
            if isinstance(v, bytes):
                v = v.decode("latin-1")
            out[key] = v
    return out


def make(step):
    name = step["name"]
    v5 = step.get("v", 4) == 5
    rec = record(name)
    kwargs = {"client_id": step.get("id", name), "protocol": mqtt.MQTTv5 if v5 else mqtt.MQTTv311}
    if not v5:
        kwargs["clean_session"] = step.get("clean", True)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, manual_ack=step.get("manual_ack", False), **kwargs)
    if "tls" in step:
        t = step["tls"]
        c.tls_set(ca_certs=t["ca"], certfile=t.get("cert"), keyfile=t.get("key"))
    done = threading.Event()

    def on_connect(client, userdata, flags, rc, properties=None):
        rec["connack"] = rc_value(rc)
        rec["session_present"] = bool(flags.session_present)
        done.set()

    def on_message(client, userdata, m):
        rec["msgs"].append({"topic": m.topic, "payload": m.payload.decode("latin-1"), "qos": m.qos,
                            "retain": bool(m.retain), "dup": bool(m.dup),
                            "props": props_of(getattr(m, "properties", None)) if v5 else {}})
        if m.qos > 0:
            unacked.setdefault(name, []).append((m.mid, m.qos))

    def on_subscribe(client, userdata, mid, rcs, properties=None):
        rec["subacks"].append([rc_value(r) for r in rcs])

    def on_unsubscribe(client, userdata, mid, rcs, properties=None):
        rec["unsubacks"].append([rc_value(r) for r in rcs])

    def on_publish(client, userdata, mid, rc, properties=None):
        rec["pubacks"].append(rc_value(rc))

    def on_disconnect(client, userdata, flags, rc, properties=None):
        if rec["disconnect"] is None and rec["connack"] is not None:
            rec["disconnect"] = rc_value(rc)
        done.set()

    c.on_connect, c.on_message, c.on_subscribe = on_connect, on_message, on_subscribe
    c.on_publish, c.on_disconnect, c.on_unsubscribe = on_publish, on_disconnect, on_unsubscribe
    if "user" in step:
        c.username_pw_set(step["user"], step.get("password"))
    if "will" in step:
        w = step["will"]
        c.will_set(w["topic"], w.get("payload", ""), w.get("qos", 0), w.get("retain", False))
    conn_props = None
    if v5 and "props" in step:
        conn_props = Properties(PacketTypes.CONNECT)
        p = step["props"]
        if "session_expiry" in p:
            conn_props.SessionExpiryInterval = p["session_expiry"]
        if "receive_max" in p:
            conn_props.ReceiveMaximum = p["receive_max"]
        if "max_packet" in p:
            conn_props.MaximumPacketSize = p["max_packet"]
        if "topic_alias_max" in p:
            conn_props.TopicAliasMaximum = p["topic_alias_max"]
    c.reconnect_delay_set(60, 120)
    kw = {"keepalive": step.get("keepalive", 60)}
    if v5:
        kw["clean_start"] = step.get("clean", True)
        kw["properties"] = conn_props
    try:
        c.connect("127.0.0.1", PORT, **kw)
    except Exception as e:  # refused at the socket: recorded, not fatal
        rec["connack"] = -1
        rec["error"] = str(e)
        return
    c.loop_start()
    done.wait(5)
    clients[name] = c


def publish(step):
    c = clients[step["name"]]
    props = None
    p = step.get("props")
    if p:
        props = Properties(PacketTypes.PUBLISH)
        for k, v in p.get("user", []):
            props.UserProperty = (k, v)
        if "response_topic" in p:
            props.ResponseTopic = p["response_topic"]
        if "correlation" in p:
            props.CorrelationData = p["correlation"].encode()
        if "expiry" in p:
            props.MessageExpiryInterval = p["expiry"]
        if "alias" in p:
            props.TopicAlias = p["alias"]
    info = c.publish(step["topic"], step.get("payload", ""), step.get("qos", 0), step.get("retain", False),
                     properties=props)
    if step.get("wait_ack", step.get("qos", 0) > 0):
        info.wait_for_publish(5)


def run(step):
    op = step["op"]
    if op == "connect":
        make(step)
    elif op == "sub":
        opts = mqtt.SubscribeOptions(qos=step.get("qos", 0), noLocal=step.get("no_local", False))
        c = clients[step["name"]]
        n = len(record(step["name"])["subacks"])
        v5 = c._protocol == mqtt.MQTTv5
        if step.get("unchecked"):
            # As a device whose client does not check filters would send it: paho refuses
            # malformed filters itself, so the packet is built without that check.
            c._send_subscribe(False, [(step["filter"].encode(), opts if v5 else step.get("qos", 0))], None)
        elif v5:
            props = None
            if "sub_id" in step:
                props = Properties(PacketTypes.SUBSCRIBE)
                props.SubscriptionIdentifier = step["sub_id"]
            c.subscribe(step["filter"], options=opts, properties=props)
        else:
            c.subscribe(step["filter"], step.get("qos", 0))
        deadline = time.time() + 5
        while len(record(step["name"])["subacks"]) == n and time.time() < deadline:
            time.sleep(0.01)
    elif op == "unsub":
        n = len(record(step["name"])["unsubacks"])
        clients[step["name"]].unsubscribe(step["filter"])
        deadline = time.time() + 5
        while len(record(step["name"])["unsubacks"]) == n and time.time() < deadline:
            time.sleep(0.01)
    elif op == "pub":
        publish(step)
    elif op == "wait_msgs":
        deadline = time.time() + step.get("timeout", 5)
        while len(record(step["name"])["msgs"]) < step["count"] and time.time() < deadline:
            time.sleep(0.01)
    elif op == "ack":
        c = clients[step["name"]]
        pending = unacked.get(step["name"], [])
        for mid, qos in pending[: step["count"]]:
            c.ack(mid, qos)
        del pending[: step["count"]]
    elif op == "mark":
        rec = record(step["name"])
        rec.setdefault("marks", {})[step["label"]] = len(rec["msgs"])
    elif op == "stall":
        c = clients[step["name"]]
        c.loop_stop()
        time.sleep(step["secs"])
        c.loop_start()
    elif op == "wait_disconnect":
        deadline = time.time() + step.get("timeout", 5)
        while record(step["name"])["disconnect"] is None and time.time() < deadline:
            time.sleep(0.01)
    elif op == "sleep":
        time.sleep(step["secs"])
    elif op == "pause":
        print("PAUSE", flush=True)
        sys.stdin.readline()
    elif op == "disconnect":
        c = clients.pop(step["name"])
        c.disconnect()
        c.loop_stop()
    elif op == "drop":
        c = clients.pop(step["name"])
        c.loop_stop()
        sock = c.socket()
        if sock is not None:  # None once the server has closed it
            sock.close()
    else:
        raise SystemExit(f"unknown op {op}")


for s in STEPS:
    run(s)
for c in clients.values():
    c.disconnect()
    c.loop_stop()
print(json.dumps(seen, sort_keys=True), flush=True)
