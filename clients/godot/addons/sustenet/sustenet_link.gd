# One TLS connection to a Sustenet server (master or cluster), framed as in docs/PROTOCOL.md:
# `u32 length | u8 type | payload`. Non-blocking: call poll() every frame, then take frames with
# next_frame(). The server's certificate must chain to the pinned CA (or the system's CAs when
# none is pinned) and be valid for the host name; anything else fails closed.
#
# Godot 3 API (StreamPeerSSL). Used by sustenet_client.gd; games do not need it directly.
extends Reference

const MAX_FRAME_BYTES = 65536

enum State { CONNECTING, HANDSHAKING, OPEN, CLOSED }

var state = State.CLOSED
var error = ""
var host = ""
var port = 0

var _tcp = StreamPeerTCP.new()
var _tls = StreamPeerSSL.new()
var _ca = null
var _buffer = PoolByteArray()
var _started_ms = 0
var _timeout_ms = 10000


# Starts connecting; returns false (and sets `error`) if that fails at once.
func open(to_host: String, to_port: int, ca: X509Certificate, timeout_s: float) -> bool:
	host = to_host
	port = to_port
	_ca = ca
	_timeout_ms = int(timeout_s * 1000.0)
	_started_ms = OS.get_ticks_msec()
	state = State.CONNECTING
	var err = _tcp.connect_to_host(to_host, to_port)
	if err != OK:
		_fail("cannot connect to %s:%d (error %d)" % [to_host, to_port, err])
		return false
	return true


func is_open() -> bool:
	return state == State.OPEN


func poll() -> void:
	match state:
		State.CONNECTING:
			var status = _tcp.get_status()
			if status == StreamPeerTCP.STATUS_CONNECTED:
				_tcp.set_no_delay(true)
				_tls.blocking_handshake = false
				var err = _tls.connect_to_stream(_tcp, true, host, _ca)
				if err != OK:
					_fail_tls()
					return
				state = State.HANDSHAKING
			elif status == StreamPeerTCP.STATUS_ERROR or status == StreamPeerTCP.STATUS_NONE:
				_fail("cannot connect to %s:%d" % [host, port])
			elif OS.get_ticks_msec() - _started_ms > _timeout_ms:
				_fail("timed out connecting to %s:%d" % [host, port])
		State.HANDSHAKING:
			_tls.poll()
			var status = _tls.get_status()
			if status == StreamPeerSSL.STATUS_CONNECTED:
				state = State.OPEN
			elif status != StreamPeerSSL.STATUS_HANDSHAKING:
				_fail_tls()
			elif OS.get_ticks_msec() - _started_ms > _timeout_ms:
				_fail("timed out in the TLS handshake with %s:%d" % [host, port])
		State.OPEN:
			_tls.poll()
			# Read what arrived before looking at the status: a server's last frames (an Error,
			# a refusal) come just before it closes.
			var available = _tls.get_available_bytes()
			if available > 0:
				var got = _tls.get_partial_data(available)
				if got[0] == OK:
					_buffer.append_array(got[1])
			if _tls.get_status() != StreamPeerSSL.STATUS_CONNECTED:
				_fail("connection to %s:%d closed" % [host, port])


# The next whole frame as [type, payload], or null when none is complete yet.
func next_frame():
	if state != State.OPEN and _buffer.size() == 0:
		return null
	if _buffer.size() < 4:
		return null
	var length = (_buffer[0] << 24) | (_buffer[1] << 16) | (_buffer[2] << 8) | _buffer[3]
	if length == 0 or length > MAX_FRAME_BYTES:
		_fail("bad frame length %d from %s:%d" % [length, host, port])
		_buffer = PoolByteArray()
		return null
	if _buffer.size() < 4 + length:
		return null
	var type = _buffer[4]
	var payload = PoolByteArray()
	if length > 1:
		payload = _buffer.subarray(5, 4 + length - 1)
	if _buffer.size() > 4 + length:
		_buffer = _buffer.subarray(4 + length, _buffer.size() - 1)
	else:
		_buffer = PoolByteArray()
	return [type, payload]


func send(type: int, payload: PoolByteArray) -> void:
	if state != State.OPEN:
		return
	var out = StreamPeerBuffer.new()
	out.big_endian = true
	out.put_u32(payload.size() + 1)
	out.put_u8(type)
	out.put_data(payload)
	if _tls.put_data(out.data_array) != OK:
		_fail("cannot write to %s:%d" % [host, port])


func close() -> void:
	if state == State.OPEN or state == State.HANDSHAKING:
		_tls.disconnect_from_stream()
	_tcp.disconnect_from_host()
	state = State.CLOSED


func _fail_tls() -> void:
	var status = _tls.get_status()
	if status == StreamPeerSSL.STATUS_ERROR_HOSTNAME_MISMATCH:
		_fail("TLS: the certificate of %s:%d is not valid for %s" % [host, port, host])
	else:
		_fail("TLS handshake with %s:%d failed: certificate not trusted (not signed by the pinned CA?)" % [host, port])


func _fail(reason: String) -> void:
	if error == "":
		error = reason
	_tls.disconnect_from_stream()
	_tcp.disconnect_from_host()
	state = State.CLOSED
