# The Todo interop policies in Rego, equivalent to todo.cedar. Users and the
# roles each role implies are in data.json (data.todo): admin and
# evil_genius are editors, editors are viewers.
package sigil.authz

default allow := false

# allow holds when some rule below grants the request; reasons names them.
allow if count(reasons) > 0

user := data.todo.users[input.subject.id] if input.subject.type == "user"

# roles is the subject's roles and every role they imply.
roles contains role if {
	some granted in user.roles
	some role in data.todo.roles[granted]
}

owner if input.resource.properties.ownerID == user.email

reasons contains "viewer-reads-users" if {
	input.action.name == "can_read_user"
	input.resource.type == "user"
	"viewer" in roles
}

reasons contains "viewer-reads-todos" if {
	input.action.name == "can_read_todos"
	input.resource.type == "todo"
	"viewer" in roles
}

reasons contains "editor-creates-todos" if {
	input.action.name == "can_create_todo"
	input.resource.type == "todo"
	"editor" in roles
}

reasons contains "editor-changes-own-todos" if {
	input.action.name in {"can_update_todo", "can_delete_todo"}
	input.resource.type == "todo"
	"editor" in roles
	owner
}

reasons contains "admin-deletes-any-todo" if {
	input.action.name == "can_delete_todo"
	input.resource.type == "todo"
	"admin" in roles
}

reasons contains "evil-genius-updates-any-todo" if {
	input.action.name == "can_update_todo"
	input.resource.type == "todo"
	"evil_genius" in roles
}
