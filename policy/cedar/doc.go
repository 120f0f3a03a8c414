// Package cedar is Sigil's default policy engine: Cedar policies
// (cedar-go) evaluated on OpenID AuthZEN requests.
//
// # How a request appears to policies
//
// An AuthZEN request becomes a Cedar request as follows (Options.Namespace,
// when set, is prefixed to the three types as "Namespace::"):
//
//	principal  subject.type::"subject.id"     attributes: subject.properties
//	action     Action::"action.name"          attributes: action.properties
//	resource   resource.type::"resource.id"   attributes: resource.properties
//	context    the request context, plus context.token
//
// So {"subject":{"type":"user","id":"alice","properties":{"department":"eng"}}}
// is principal == user::"alice" with principal.department == "eng". Types are
// used verbatim: write `principal is user`, not `User`, for type "user".
//
// JSON values map to Cedar values: strings to String, booleans to Boolean,
// integers to Long, other numbers to decimal (at most four fractional
// digits, as Cedar's decimal allows), arrays to Set, objects to Record, and
// an object of the single member "__entity" ({"type","id"}) to an entity
// reference, as in Cedar's JSON entity format. A null member is left out;
// any other value (a null inside an array, a number out of range) makes the
// request invalid.
//
// When the caller verified an access token, its claims are the record
// context.token (so `context.token.sub`, `context.token.act.sub`); a
// request whose own context has a "token" member is refused (see package
// policy). Test for it with `context has token` before reading it. The
// space-delimited scope claim is a set of strings, since Cedar cannot
// split a string: `context.token.scope.contains("read:files")`.
//
// Entities come from two places: the request (principal, resource and
// action, each with its properties as attributes and no parents) and
// *.entities.json files in Cedar's entity JSON format (users with their
// roles as parents, role hierarchies, action groups). When both name the
// same entity, the file's parents and attributes win and request
// properties only add attributes the file lacks: the PDP's directory is
// the authority on who a subject is.
//
// # Files
//
// Load reads, from a directory tree (an fs.FS): *.cedar policy files;
// at most one schema, *.cedarschema (Cedar syntax) or *.cedarschema.json;
// and *.entities.json. Hidden files and directories are skipped. A policy's
// ID is its @id("...") annotation or, without one, "file:line". A syntax
// error is a *policy.LoadError with file, line and column.
//
// With a schema, every policy is validated against it in strict mode
// (cedar-go's x/exp/schema/validate, the same checks as the Rust
// validator: unknown entity types, attributes and actions, type errors), as
// is every entity in the entity files; a failure is a LoadError naming the
// policy. At evaluation time a request whose types or context do not fit
// the schema is a deny with an error, checked before context.token is added
// (declare `token?: {...}` in an action's context to read claims in a
// validated policy). Request properties are not checked against entity
// shapes: a resource named by the caller need not be in the entity files.
//
// # Decisions
//
// Cedar's semantics: a request is allowed when some permit policy is
// satisfied and no forbid policy is. A policy whose evaluation errors (a
// missing attribute read without `has`) is skipped, as Cedar specifies;
// for a forbid policy that would turn a failed check into an allow, so
// this engine denies whenever a forbid policy errored. Decision.Reasons
// names the satisfied permit policies on an allow and the satisfied forbid
// policies on a deny; Decision.Errors lists every policy error either way.
//
// An Engine is immutable once loaded and safe for concurrent use.
package cedar
