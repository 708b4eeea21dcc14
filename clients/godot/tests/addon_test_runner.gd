# The steps of addon_test.gd as a node (signals and yields need the scene tree).
extends Node

const Sustenet = preload("res://addons/sustenet/sustenet_client.gd")
const STEP_TIMEOUT_S = 30.0

var _events = []
var _deadline_ms = 0


func _ready() -> void:
	var code = yield(_run(), "completed")
	print("RESULT: ", "PASS" if code == 0 else "FAIL")
	get_tree().quit(code)


func _client(ca_path: String) -> Node:
	var client = Sustenet.new()
	client.master_host = OS.get_environment("SUSTENET_MASTER_HOST")
	client.master_port = int(OS.get_environment("SUSTENET_MASTER_PORT"))
	client.ca_certificate_path = ca_path
	client.keepalive_interval = 1.0
	for name in ["clusters_listed", "joined", "message", "player_spawned", "player_moved",
			"player_despawned", "disconnected"]:
		client.connect(name, self, "_on_event", [name])
	add_child(client)
	return client


# Signal arguments arrive first, the bound signal name last.
func _on_event(a = null, b = null, c = null, d = null) -> void:
	var args = [a, b, c, d]
	var name = null
	for i in range(args.size() - 1, -1, -1):
		if args[i] != null:
			name = args[i]
			args.resize(i)
			break
	_events.append([name, args])


# Waits for the first event named `name` that `accept` (a FuncRef, or null) takes; null on timeout.
func _wait(name: String, accept = null):
	# Always yield once, so callers can `yield(_wait(...), "completed")`.
	yield(get_tree(), "idle_frame")
	var deadline = OS.get_ticks_msec() + int(STEP_TIMEOUT_S * 1000.0)
	while OS.get_ticks_msec() < deadline:
		for i in range(_events.size()):
			var event = _events[i]
			if event[0] == name and (accept == null or accept.call_func(event[1])):
				_events.remove(i)
				return event[1]
			if event[0] == "disconnected" and name != "disconnected":
				print("FAIL: disconnected while waiting for ", name, ": ", event[1][0])
				return null
		yield(get_tree(), "idle_frame")
	print("FAIL: no ", name, " within ", STEP_TIMEOUT_S, " s")
	return null


func _run():
	yield(get_tree(), "idle_frame")
	# The join commitment matches docs/PROTOCOL.md's "TLS join binding" vector.
	var secret = PoolByteArray()
	for i in range(0x40, 0x60):
		secret.append(i)
	var commitment = Sustenet._commitment(secret).hex_encode()
	if commitment != "196320e0ab7c5a4cfa05951c8bd074ec935194b4cdbbbd0972a58384c27468e6":
		print("FAIL: commitment vector gave ", commitment)
		return 1
	print("commitment vector ok")

	var client = _client(OS.get_environment("SUSTENET_CA"))

	client.list_clusters()
	var listed = yield(_wait("clusters_listed"), "completed")
	if listed == null:
		return 1
	var clusters = listed[0]
	print("clusters: ", clusters)
	if clusters.size() != 1 or clusters[0].endpoints.size() == 0:
		print("FAIL: expected one cluster with a tls endpoint, got ", clusters)
		return 1

	client.join(0)
	var joined = yield(_wait("joined"), "completed")
	if joined == null:
		return 1
	var me = joined[0]
	print("joined as client ", me, " on ", joined[1].host)

	# Quiet for longer than the cluster's idle timeout: only the keepalive Pings hold the session.
	var idle_s = float(OS.get_environment("SUSTENET_IDLE_S"))
	var quiet_until = OS.get_ticks_msec() + int(idle_s * 1000.0)
	while OS.get_ticks_msec() < quiet_until:
		yield(get_tree(), "idle_frame")
	for event in _events:
		if event[0] == "disconnected":
			print("FAIL: dropped while idle: ", event[1][0])
			return 1
	print("still joined after ", idle_s, " s idle")

	client.send_message(0x80, "hello from godot".to_utf8())
	var echoed = yield(_wait("message"), "completed")
	if echoed == null:
		return 1
	if echoed[0] != 0x80 or echoed[1].get_string_from_utf8() != "hello from godot":
		print("FAIL: echo was ", echoed)
		return 1
	print("echo: ", echoed[1].get_string_from_utf8())

	# The Deno bot walks along x; see it at two different places.
	client.send_move(Vector3(1, 0, 1), 0.5)
	var first = yield(_wait("player_moved", _OtherPlayer.new(me, null)), "completed")
	if first == null:
		return 1
	var second = yield(_wait("player_moved", _OtherPlayer.new(me, first[1])), "completed")
	if second == null:
		return 1
	print("bot ", first[0], " moved from ", first[1], " to ", second[1])

	client.leave()
	var left = yield(_wait("disconnected"), "completed")
	if left == null or left[0] != "left":
		print("FAIL: leave ended with ", left)
		return 1
	print("left")

	# A refusal carries the protocol's reason.
	client.join(987654321)
	var unknown = yield(_wait("disconnected"), "completed")
	if unknown == null or unknown[0].find("UnknownCluster") != 0:
		print("FAIL: expected UnknownCluster, got ", unknown)
		return 1
	print("unknown cluster: ", unknown[0])

	# A client pinning another CA must refuse the server and never join.
	var wrong = _client(OS.get_environment("SUSTENET_WRONG_CA"))
	wrong.list_clusters()
	var refused = yield(_wait("disconnected"), "completed")
	if refused == null:
		return 1
	print("wrong CA: ", refused[0])
	if refused[0].find("certificate") == -1:
		print("FAIL: expected a certificate failure, got ", refused[0])
		return 1
	for event in _events:
		if event[0] == "clusters_listed":
			print("FAIL: listed clusters through an untrusted certificate")
			return 1
	return 0


class _OtherPlayer:
	var me
	var not_at

	func _init(my_id, position):
		me = my_id
		not_at = position

	func call_func(args) -> bool:
		return args[0] != me and (not_at == null or args[1] != not_at)
