package keys

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ReadPrivateFile reads a file that holds a secret, refusing it when group
// or others may read or write it (as ssh does with private keys): a
// secret that has leaked to other local users is no secret.
func ReadPrivateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if mode := st.Mode().Perm(); mode&0o077 != 0 {
		return nil, fmt.Errorf("keys: %s is open to other users (mode %04o): run chmod 600 %s", path, mode, path)
	}
	return io.ReadAll(io.LimitReader(f, 1<<16))
}

// LoadOrCreatePrivateFile returns the contents of the secret file at path,
// creating it (directory 0700, file 0600) with gen's output when it does
// not exist. The file appears complete or not at all: it is written to a
// temporary file, synced, and hard-linked into place, which fails if
// another process got there first (then that process's file is read); the
// directory is synced too, so the file survives a power loss along with
// whatever was sealed under it.
func LoadOrCreatePrivateFile(path string, gen func() []byte) ([]byte, error) {
	b, err := ReadPrivateFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".new-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("keys: create %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	data := gen()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("keys: write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ReadPrivateFile(path)
		}
		return nil, fmt.Errorf("keys: create %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return data, nil
}
