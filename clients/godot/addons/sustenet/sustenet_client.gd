# SustenetClient: a node that lists a Sustenet master's clusters, joins one over TLS in the
# TLS session mode (docs/PROTOCOL.md "TLS session mode"), and turns the cluster's packets into
# signals. GDScript only, Godot 3 API; see clients/godot/README.md.
#
# It never sends the join secret anywhere but a TLS connection whose certificate chains to the
# pinned CA, and never falls back to a plain connection.
extends Node
class_name SustenetClient

const Link = preload("res://addons/sustenet/sustenet_link.gd")

signal clusters_listed(clusters)
signal joined(client_id, cluster)
signal message(command, payload)
signal player_spawned(client_id, player_id, position)
signal player_moved(client_id, position, yaw)
signal player_despawned(client_id)
signal disconnected(reason)

const PROTOCOL_VERSION = 3
const ROLE_CLIENT = 1
const TLS_JOIN_LABEL = "sustenet tls-join v1"

const T_HELLO = 0x01
const T_HELLO_OK = 0x02
const T_ERROR = 0x03
const T_PING = 0x04
const T_PONG = 0x05
const T_REQUEST_CLUSTERS = 0x10
const T_SEND_CLUSTERS = 0x11
const T_JOIN_CLUSTER = 0x12
const T_JOIN_TICKET = 0x13
const T_AUTHENTICATE = 0x26
const T_LEAVE_CLUSTER = 0x28
const T_DISCONNECT_CLUSTER = 0x29
const T_MOVE = 0x2A
const T_MOVE_BATCH = 0x2B
const T_SPAWN = 0x2C
const T_DESPAWN = 0x2D
const T_TLS_JOIN = 0x2E

const ENDPOINT_KINDS = {1: "tcp", 2: "tls", 3: "ws", 4: "wss"}
const ERROR_NAMES = {
	1: "BadHello", 2: "VersionMismatch", 3: "BadFrame", 4: "FrameTooLarge", 5: "BadPacket",
	6: "UnknownPacket", 7: "UnexpectedPacket", 8: "ServerFull", 9: "Timeout", 10: "AuthFailed",
	11: "UnknownCluster", 12: "ClusterFull", 13: "NoCluster", 14: "Unauthorized",
	15: "ShuttingDown", 16: "SlowConsumer", 17: "UseMaster", 18: "Internal", 19: "RateLimited",
}
const AUTH_REASONS = {
	40: "ticket invalid", 44: "ticket expired or already used", 50: "server error or cluster full",
}

# The master's TLS address (its `tls_port`, default 6266).
export var master_host = "127.0.0.1"
export var master_port = 6266
# The CA certificate (PEM) the servers' certificates must chain to: the game's own CA, e.g.
# `certs/ca.pem` from `deno task certs`. Empty = the system's CAs.
export(String, FILE, "*.pem,*.crt") var ca_certificate_path = ""
# Opaque credential for the master's authentication hook (empty: guest).
export var credential = PoolByteArray()
# Seconds between Pings on an idle connection (servers close after 30 s of silence).
export var keepalive_interval = 5.0
# Seconds a connection and its TLS handshake may take.
export var connect_timeout = 10.0

# Our id on the cluster once joined, else 0.
var client_id = 0
# The cluster joined (a Dictionary like those of clusters_listed), or null.
var cluster = null

var _ca = null
var _master = null
var _cluster_link = null
var _master_ready = false
var _queued = []
var _secret = PoolByteArray()
var _ticket = PoolByteArray()
var _joining = false
var _ping_value = 0
var _last_sent_ms = 0
var _crypto = Crypto.new()


func _process(_delta: float) -> void:
	if _master != null:
		_master.poll()
		_drain_master()
	if _cluster_link != null:
		_cluster_link.poll()
		_drain_cluster()
	_keepalive()


# Asks the master for its clusters; answers with clusters_listed(Array of Dictionary).
func list_clusters() -> void:
	_queue(funcref(self, "_send_request_clusters"))


# Joins a cluster by id, or the least-loaded one with room (0); answers with joined(...) or
# disconnected(reason).
func join(cluster_id: int = 0) -> void:
	if _joining or _cluster_link != null:
		push_warning("SustenetClient: already joining or joined")
		return
	_joining = true
	_queue(_JoinRequest.new(self, cluster_id))


# Sends a plugin command (0x80..0xFF) with its payload to the cluster's plugins.
func send_message(command: int, payload: PoolByteArray) -> void:
	if command < 0x80 or command > 0xFF:
		push_error("SustenetClient: plugin commands are 0x80..0xFF, got %d" % command)
		return
	if not _is_joined():
		push_warning("SustenetClient: not joined, message dropped")
		return
	_send_cluster(command, payload)


# Sends our position (y is the height) and, if given, our yaw in radians.
func send_move(position: Vector3, yaw = null) -> void:
	if not _is_joined():
		return
	var w = _writer()
	w.put_u8(0 if yaw == null else 1)
	w.put_float(position.x)
	w.put_float(position.y)
	w.put_float(position.z)
	if yaw != null:
		w.put_float(float(yaw))
	_send_cluster(T_MOVE, w.data_array)


# Leaves the cluster; disconnected("left") follows once the cluster confirms.
func leave() -> void:
	if _is_joined():
		_send_cluster(T_LEAVE_CLUSTER, PoolByteArray())
	else:
		_end("left")


# Closes every connection at once, without a signal.
func close() -> void:
	if _master != null:
		_master.close()
	if _cluster_link != null:
		_cluster_link.close()
	_reset()


func _is_joined() -> bool:
	return _cluster_link != null and client_id != 0


# ---------------------------------------------------------------------------------- master


class _JoinRequest:
	var client
	var cluster_id

	func _init(owner, id):
		client = owner
		cluster_id = id

	func call_func():
		client._send_join(cluster_id)


func _queue(request) -> void:
	if _ca == null and ca_certificate_path != "":
		_ca = X509Certificate.new()
		if _ca.load(ca_certificate_path) != OK:
			_ca = null
			_end("cannot load the pinned CA certificate %s" % ca_certificate_path)
			return
	if _master == null:
		_master = Link.new()
		_master_ready = false
		if not _master.open(master_host, master_port, _ca, connect_timeout):
			_end(_master.error)
			return
	_queued.append(request)
	if _master_ready:
		_flush_queue()


func _flush_queue() -> void:
	var requests = _queued
	_queued = []
	for request in requests:
		request.call_func()


func _send_request_clusters() -> void:
	_send_master(T_REQUEST_CLUSTERS, PoolByteArray())


func _send_join(cluster_id: int) -> void:
	# A fresh secret per join; the master only ever sees its commitment.
	_secret = _crypto.generate_random_bytes(32)
	var w = _writer()
	w.put_u32(cluster_id)
	var commitment = _commitment(_secret)
	w.put_u8(commitment.size())
	w.put_data(commitment)
	w.put_u16(credential.size())
	w.put_data(credential)
	_send_master(T_JOIN_CLUSTER, w.data_array)


# SHA-256("sustenet tls-join v1\0" ‖ secret).
static func _commitment(secret: PoolByteArray) -> PoolByteArray:
	var input = TLS_JOIN_LABEL.to_utf8()
	input.append(0)
	input.append_array(secret)
	var hashing = HashingContext.new()
	hashing.start(HashingContext.HASH_SHA256)
	hashing.update(input)
	return hashing.finish()


func _drain_master() -> void:
	var frame = _master.next_frame()
	while frame != null:
		_on_master_frame(frame[0], frame[1])
		if _master == null:
			return
		frame = _master.next_frame()
	if _master.is_open() and not _master_ready and _master.state == Link.State.OPEN:
		if not _master.has_meta("hello_sent"):
			_master.set_meta("hello_sent", true)
			_send_hello(_master)
	if _master.state == Link.State.CLOSED:
		var reason = _master.error
		_master = null
		_master_ready = false
		if _joining or not _queued.empty():
			_end(reason)


func _on_master_frame(type: int, payload: PoolByteArray) -> void:
	var r = _reader(payload)
	match type:
		T_HELLO_OK:
			_master_ready = true
			_flush_queue()
		T_SEND_CLUSTERS:
			var clusters = []
			var count = r.get_u16()
			for _i in range(count):
				clusters.append(_read_cluster_info(r))
			emit_signal("clusters_listed", clusters)
		T_JOIN_TICKET:
			_on_join_ticket(r)
		T_ERROR:
			var code = r.get_u16()
			var reason = _str16(r)
			_end("%s: %s" % [ERROR_NAMES.get(code, "Error %d" % code), reason])
		T_PING:
			_send_master(T_PONG, payload)
		T_PONG:
			pass
		_:
			_end("UnexpectedPacket: type 0x%02x from the master" % type)


func _on_join_ticket(r: StreamPeerBuffer) -> void:
	var info = {}
	info.id = r.get_u32()
	info.host = _str8(r)
	info.port = r.get_u16()
	info.key_version = r.get_u16()
	var _key = _bytes(r, r.get_u8())
	_ticket = _bytes(r, r.get_u16())
	info.endpoints = _read_endpoints(r)
	var tls_port = 0
	for endpoint in info.endpoints:
		if endpoint.kind == "tls":
			tls_port = endpoint.port
	if tls_port == 0:
		# Never fall back to a plain connection: the secret would travel in the clear.
		_end("cluster %d has no TLS endpoint (set tls_cert / tls_key on the cluster)" % info.id)
		return
	cluster = info
	_master.close()
	_master = null
	_master_ready = false
	_cluster_link = Link.new()
	if not _cluster_link.open(info.host, tls_port, _ca, connect_timeout):
		_end(_cluster_link.error)


# ---------------------------------------------------------------------------------- cluster


func _drain_cluster() -> void:
	var frame = _cluster_link.next_frame()
	while frame != null:
		_on_cluster_frame(frame[0], frame[1])
		if _cluster_link == null:
			return
		frame = _cluster_link.next_frame()
	if _cluster_link.state == Link.State.OPEN and not _cluster_link.has_meta("hello_sent"):
		_cluster_link.set_meta("hello_sent", true)
		_send_hello(_cluster_link)
	if _cluster_link.state == Link.State.CLOSED:
		_end(_cluster_link.error)


func _on_cluster_frame(type: int, payload: PoolByteArray) -> void:
	var r = _reader(payload)
	if type >= 0x80:
		emit_signal("message", type, payload)
		return
	match type:
		T_HELLO_OK:
			var w = _writer()
			w.put_u8(_secret.size())
			w.put_data(_secret)
			w.put_u16(_ticket.size())
			w.put_data(_ticket)
			_send_cluster(T_TLS_JOIN, w.data_array)
		T_AUTHENTICATE:
			var status = r.get_u8()
			var id = r.get_u32()
			if status == 20:
				client_id = id
				_joining = false
				emit_signal("joined", id, cluster)
			else:
				_end("ticket refused (%d): %s" % [status, AUTH_REASONS.get(status, "unknown status")])
		T_SPAWN:
			var id = r.get_u32()
			var player_id = _str8(r)
			var state = _read_move_state(r)
			emit_signal("player_spawned", id, player_id, state[0])
		T_MOVE_BATCH:
			var count = r.get_u16()
			for _i in range(count):
				var id = r.get_u32()
				var state = _read_move_state(r)
				emit_signal("player_moved", id, state[0], state[1])
		T_DESPAWN:
			emit_signal("player_despawned", r.get_u32())
		T_DISCONNECT_CLUSTER:
			_end(_str16(r))
		T_LEAVE_CLUSTER:
			_end("left")
		T_ERROR:
			var code = r.get_u16()
			var reason = _str16(r)
			_end("%s: %s" % [ERROR_NAMES.get(code, "Error %d" % code), reason])
		T_PING:
			_send_cluster(T_PONG, payload)
		T_PONG:
			pass
		_:
			pass # packets this client does not use (SendClusters, …)


# ---------------------------------------------------------------------------------- shared


func _send_hello(link) -> void:
	var w = _writer()
	w.put_data("SUST".to_ascii())
	w.put_u16(PROTOCOL_VERSION)
	w.put_u8(ROLE_CLIENT)
	link.send(T_HELLO, w.data_array)
	_last_sent_ms = OS.get_ticks_msec()


func _send_master(type: int, payload: PoolByteArray) -> void:
	if _master != null:
		_master.send(type, payload)
		_last_sent_ms = OS.get_ticks_msec()


func _send_cluster(type: int, payload: PoolByteArray) -> void:
	if _cluster_link != null:
		_cluster_link.send(type, payload)
		_last_sent_ms = OS.get_ticks_msec()


func _keepalive() -> void:
	if OS.get_ticks_msec() - _last_sent_ms < int(keepalive_interval * 1000.0):
		return
	_ping_value += 1
	var w = _writer()
	w.put_u32(_ping_value)
	if _is_joined():
		_send_cluster(T_PING, w.data_array)
	elif _master != null and _master_ready:
		_send_master(T_PING, w.data_array)


func _end(reason: String) -> void:
	if _master != null:
		_master.close()
	if _cluster_link != null:
		_cluster_link.close()
	_reset()
	emit_signal("disconnected", reason)


func _reset() -> void:
	_master = null
	_cluster_link = null
	_master_ready = false
	_queued = []
	_joining = false
	client_id = 0
	cluster = null
	_secret = PoolByteArray()
	_ticket = PoolByteArray()


static func _writer() -> StreamPeerBuffer:
	var w = StreamPeerBuffer.new()
	w.big_endian = true
	return w


static func _reader(payload: PoolByteArray) -> StreamPeerBuffer:
	var r = StreamPeerBuffer.new()
	r.big_endian = true
	r.data_array = payload
	return r


static func _bytes(r: StreamPeerBuffer, length: int) -> PoolByteArray:
	if length == 0:
		return PoolByteArray()
	var got = r.get_data(length)
	return got[1]


static func _str8(r: StreamPeerBuffer) -> String:
	return _bytes(r, r.get_u8()).get_string_from_utf8()


static func _str16(r: StreamPeerBuffer) -> String:
	return _bytes(r, r.get_u16()).get_string_from_utf8()


static func _read_endpoints(r: StreamPeerBuffer) -> Array:
	var endpoints = []
	if r.get_position() >= r.get_size():
		return endpoints
	var count = r.get_u8()
	for _i in range(count):
		var kind = r.get_u8()
		var port = r.get_u16()
		var path = _str8(r)
		endpoints.append({"kind": ENDPOINT_KINDS.get(kind, "unknown"), "port": port, "path": path})
	return endpoints


static func _read_cluster_info(r: StreamPeerBuffer) -> Dictionary:
	var info = {}
	info.id = r.get_u32()
	info.name = _str8(r)
	info.host = _str8(r)
	info.port = r.get_u16()
	info.load = r.get_u32()
	info.max_connections = r.get_u32()
	info.key_version = r.get_u16()
	info.full = (r.get_u8() & 1) == 1
	info.endpoints = _read_endpoints(r)
	return info


# [Vector3 position, yaw or null]; the velocity, if any, is read and dropped.
static func _read_move_state(r: StreamPeerBuffer) -> Array:
	var flags = r.get_u8()
	var position = Vector3(r.get_float(), r.get_float(), r.get_float())
	var yaw = null
	if flags & 1:
		yaw = r.get_float()
	if flags & 2:
		r.get_float()
		r.get_float()
		r.get_float()
	return [position, yaw]
