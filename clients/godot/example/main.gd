# Example scene: joins the least-loaded cluster over TLS and shows every player the cluster
# reports as a coloured square that follows its moves. Arrow keys move your own square; Enter
# sends a chat line to plugin command 0x80 (the echo plugin sends it back).
#
# Set the master address and the pinned CA below (or on the SustenetClient node in your game).
extends Node2D

const Sustenet = preload("res://addons/sustenet/sustenet_client.gd")
const WORLD_SCALE = 8.0 # pixels per world unit (x, z on screen)
const SPEED = 10.0 # world units per second

var client
var me = 0
var my_position = Vector3.ZERO
var squares = {}
var send_timer = 0.0


func _ready() -> void:
	client = Sustenet.new()
	client.master_host = "127.0.0.1"
	client.master_port = 6266
	client.ca_certificate_path = "res://certs/ca.pem" # copy `deno task certs`' ca.pem here
	add_child(client)
	client.connect("joined", self, "_on_joined")
	client.connect("message", self, "_on_message")
	client.connect("player_spawned", self, "_on_spawned")
	client.connect("player_moved", self, "_on_moved")
	client.connect("player_despawned", self, "_on_despawned")
	client.connect("disconnected", self, "_on_disconnected")
	client.join(0)


func _process(delta: float) -> void:
	if me == 0:
		return
	var input = Vector3(
		Input.get_action_strength("ui_right") - Input.get_action_strength("ui_left"), 0,
		Input.get_action_strength("ui_down") - Input.get_action_strength("ui_up"))
	my_position += input * SPEED * delta
	_square(me, Color.white).position = _to_screen(my_position)
	send_timer += delta
	if send_timer >= 0.05: # 20 moves a second, well under the cluster's limits
		send_timer = 0.0
		client.send_move(my_position)
	if Input.is_action_just_pressed("ui_accept"):
		client.send_message(0x80, "hello from Godot".to_utf8())


func _on_joined(client_id, cluster) -> void:
	me = client_id
	$Status.text = "joined %s:%d as %d" % [cluster.host, cluster.port, client_id]


func _on_message(command, payload) -> void:
	$Status.text = "0x%02x: %s" % [command, payload.get_string_from_utf8()]


func _on_spawned(client_id, player_id, position) -> void:
	_square(client_id, Color.aqua).position = _to_screen(position)


func _on_moved(client_id, position, _yaw) -> void:
	if client_id != me:
		_square(client_id, Color.aqua).position = _to_screen(position)


func _on_despawned(client_id) -> void:
	if squares.has(client_id):
		squares[client_id].queue_free()
		squares.erase(client_id)


func _on_disconnected(reason) -> void:
	me = 0
	$Status.text = "disconnected: %s" % reason


func _square(client_id: int, color: Color) -> Polygon2D:
	if not squares.has(client_id):
		var square = Polygon2D.new()
		square.polygon = PoolVector2Array([Vector2(-6, -6), Vector2(6, -6), Vector2(6, 6), Vector2(-6, 6)])
		square.color = color
		add_child(square)
		squares[client_id] = square
	return squares[client_id]


func _to_screen(position: Vector3) -> Vector2:
	return Vector2(512, 300) + Vector2(position.x, position.z) * WORLD_SCALE
