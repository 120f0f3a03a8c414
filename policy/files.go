package policy

import (
	"io/fs"
	"strings"
)

// WalkFiles calls fn with the path of every regular file under fsys, in
// lexical order, leaving out hidden files and directories (a name that
// starts with '.': editors' swap files, .git). It is how every policy
// directory is read: by the engines, by the reload watch and by `sigil
// policy test`, so that all of them see the same files. An error from fn
// stops the walk and is returned.
func WalkFiles(fsys fs.FS, fn func(path string, d fs.DirEntry) error) error {
	return fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		return fn(path, d)
	})
}
