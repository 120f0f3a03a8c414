package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File reads a YAML config file and returns its settings by flag name:
// nested keys are joined with "-", and "." or "_" in a key become "-", so
// `keys: {prepublish: 0s}`, `keys.prepublish: 0s` and `keys-prepublish: 0s`
// all set --keys-prepublish. A list becomes its elements joined with ",".
// Values are returned as strings for the flag parser to check. Two keys
// that name the same setting are an error, as is a list of mappings,
// except under federation.trusted-issuers, whose list of mappings becomes
// its JSON encoding (the value of --federation-trusted-issuers, read by
// ParseTrustedIssuers).
func File(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	out := map[string]string{}
	from := map[string]string{}
	if err := flatten("", "", doc, out, from); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return out, nil
}

var keyReplacer = strings.NewReplacer(".", "-", "_", "-")

// flatten adds m's settings to out under prefix. from records each
// name's key as written (dotted path), to report two spellings of one
// setting.
func flatten(prefix, written string, m map[string]any, out, from map[string]string) error {
	// Sorted, so that an error names the same keys on every run.
	for _, k := range slices.Sorted(maps.Keys(m)) {
		name, key := keyReplacer.Replace(strings.ToLower(k)), k
		if prefix != "" {
			name, key = prefix+"-"+name, written+"."+k
		}
		var value string
		switch v := m[k].(type) {
		case map[string]any:
			if err := flatten(name, key, v, out, from); err != nil {
				return err
			}
			continue
		case map[any]any:
			return fmt.Errorf("key %s: mapping keys must be strings", key)
		case []any:
			if name == TrustedIssuersKey {
				b, err := json.Marshal(v)
				if err != nil {
					return fmt.Errorf("key %s: %w", key, err)
				}
				value = string(b)
				break
			}
			parts := make([]string, len(v))
			for i, e := range v {
				switch e.(type) {
				case map[string]any, map[any]any, []any:
					return fmt.Errorf("key %s: a list may hold only plain values", key)
				}
				parts[i] = fmt.Sprint(e)
			}
			value = strings.Join(parts, ",")
		case nil:
		default:
			value = fmt.Sprint(v)
		}
		if other, ok := from[name]; ok {
			return fmt.Errorf("keys %s and %s both set %s", other, key, name)
		}
		out[name], from[name] = value, key
	}
	return nil
}
