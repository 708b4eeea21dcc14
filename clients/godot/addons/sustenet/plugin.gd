# Editor plugin: adds the SustenetClient node to the "Create Node" dialog.
tool
extends EditorPlugin


func _enter_tree() -> void:
	add_custom_type("SustenetClient", "Node", preload("sustenet_client.gd"), null)


func _exit_tree() -> void:
	remove_custom_type("SustenetClient")
