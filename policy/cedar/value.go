package cedar

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/cedar-policy/cedar-go/types"
)

// maxValueDepth bounds the recursion of value conversion. Requests from
// the network were already bounded by policy.Limits; this stops a Go
// caller's cyclic or absurdly deep map from overflowing the stack, which
// would kill the process rather than panic.
const maxValueDepth = 64

// record converts a JSON object to a Cedar record.
func record(m map[string]any, depth int) (types.Record, error) {
	if len(m) == 0 {
		return types.Record{}, nil
	}
	if depth > maxValueDepth {
		return types.Record{}, fmt.Errorf("value nests deeper than %d levels", maxValueDepth)
	}
	rm := make(types.RecordMap, len(m))
	for k, v := range m {
		if v == nil {
			continue // AuthZEN's null is "absent"; Cedar has no null.
		}
		cv, err := value(v, depth+1)
		if err != nil {
			return types.Record{}, fmt.Errorf("%s: %w", k, err)
		}
		rm[types.String(k)] = cv
	}
	return types.NewRecord(rm), nil
}

// value converts one JSON value (as decoded with UseNumber, or built in Go)
// to a Cedar value.
func value(v any, depth int) (types.Value, error) {
	if depth > maxValueDepth {
		return nil, fmt.Errorf("value nests deeper than %d levels", maxValueDepth)
	}
	switch x := v.(type) {
	case string:
		return types.String(x), nil
	case bool:
		return types.Boolean(x), nil
	case json.Number:
		return number(string(x))
	case int:
		return types.Long(x), nil
	case int32:
		return types.Long(x), nil
	case int64:
		return types.Long(x), nil
	case float64:
		return float(x)
	case float32:
		return float(float64(x))
	case []string:
		vs := make([]types.Value, len(x))
		for i, s := range x {
			vs[i] = types.String(s)
		}
		return types.NewSet(vs...), nil
	case []any:
		vs := make([]types.Value, len(x))
		for i, e := range x {
			if e == nil {
				return nil, fmt.Errorf("[%d]: null is not a Cedar value", i)
			}
			cv, err := value(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			vs[i] = cv
		}
		return types.NewSet(vs...), nil
	case map[string]any:
		if uid, ok, err := entityRef(x); ok || err != nil {
			return uid, err
		}
		return record(x, depth)
	case map[string]string:
		rm := make(types.RecordMap, len(x))
		for k, s := range x {
			rm[types.String(k)] = types.String(s)
		}
		return types.NewRecord(rm), nil
	case nil:
		return nil, fmt.Errorf("null is not a Cedar value")
	}
	return nil, fmt.Errorf("unsupported value of type %T", v)
}

// number converts a JSON number: an integer that fits 64 bits is a Long,
// anything else a decimal, which Cedar limits to four fractional digits.
func number(s string) (types.Value, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return types.Long(n), nil
	}
	if d, err := types.ParseDecimal(s); err == nil {
		return d, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("number %.40q is out of range", s)
	}
	return float(f)
}

func float(f float64) (types.Value, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("number %v is not a Cedar value", f)
	}
	if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return types.Long(int64(f)), nil
	}
	// A decimal holds four fractional digits. Rounding a finer number
	// would change what the policy compares, so it is refused instead.
	if scaled := f * 1e4; scaled != math.Trunc(scaled) {
		return nil, fmt.Errorf("number %v has more than four fractional digits, which a Cedar decimal cannot hold", f)
	}
	d, err := types.NewDecimalFromFloat(f)
	if err != nil {
		return nil, fmt.Errorf("number %v does not fit a Cedar decimal", f)
	}
	return d, nil
}

// entityRef recognises Cedar's JSON entity escape {"__entity": {"type":
// "T", "id": "I"}}.
func entityRef(m map[string]any) (types.EntityUID, bool, error) {
	raw, ok := m["__entity"]
	if !ok || len(m) != 1 {
		return types.EntityUID{}, false, nil
	}
	e, ok := raw.(map[string]any)
	if !ok {
		return types.EntityUID{}, true, fmt.Errorf("__entity must be an object")
	}
	typ, ok1 := e["type"].(string)
	id, ok2 := e["id"].(string)
	if !ok1 || !ok2 || typ == "" {
		return types.EntityUID{}, true, fmt.Errorf("__entity needs string type and id")
	}
	return types.NewEntityUID(types.EntityType(typ), types.String(id)), true, nil
}
