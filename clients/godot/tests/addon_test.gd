# Headless test of the Sustenet addon, run by tests/godot_client_test.ts:
#   godot3-server --no-window --path clients/godot -s res://tests/addon_test.gd
# Reads SUSTENET_MASTER_HOST, SUSTENET_MASTER_PORT, SUSTENET_CA, SUSTENET_WRONG_CA from the
# environment. Exit code 0 = every step passed; 1 = a step failed (printed as "FAIL: …").
extends SceneTree

const Runner = preload("res://tests/addon_test_runner.gd")


func _init() -> void:
	var runner = Runner.new()
	root.call_deferred("add_child", runner)
