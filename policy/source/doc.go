// Package source loads a policy directory into the engine its files are
// written for, and watches the directory for changes.
//
// A directory holds either Cedar (*.cedar, with an optional schema and
// *.entities.json; package policy/cedar) or Rego (*.rego and data.json;
// package policy/rego) policies. Load picks the engine from the files
// when none is named, and refuses a directory that holds both: running
// one language and silently ignoring the other would leave half the
// policies unenforced.
//
// Watch polls the directory's file names, sizes and modification times
// (no fsnotify dependency; a second's delay is fine for policy changes)
// and reloads a PDP when they change. A failed reload keeps the previous
// policy set serving (policy.PDP.Reload) and is logged with each file:line
// error.
package source
