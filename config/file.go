package config

import (
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File reads a YAML config file and returns its settings by flag name:
// nested keys are joined with "-", and "." or "_" in a key become "-", so
// `keys: {prepublish: 0s}`, `keys.prepublish: 0s` and `keys-prepublish: 0s`
// all set --keys-prepublish. Values are returned as strings for the flag
// parser to check.
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
	if err := flatten("", doc, out); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return out, nil
}

func flatten(prefix string, m map[string]any, out map[string]string) error {
	for k, v := range m {
		name := strings.NewReplacer(".", "-", "_", "-").Replace(strings.ToLower(k))
		if prefix != "" {
			name = prefix + "-" + name
		}
		switch v := v.(type) {
		case map[string]any:
			if err := flatten(name, v, out); err != nil {
				return err
			}
		case []any:
			parts := make([]string, len(v))
			for i, e := range v {
				parts[i] = fmt.Sprint(e)
			}
			out[name] = strings.Join(parts, ",")
		case nil:
			out[name] = ""
		default:
			out[name] = fmt.Sprint(v)
		}
	}
	return nil
}
