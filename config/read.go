package config

import (
	"fmt"
	"reflect"
	"strings"
)

// blockField is one setting of a block of settings (policyBlock, metricBlock): where it is in the struct, its name
// after the block's prefix and its default (the envDefault tag).
type blockField struct {
	index      []int
	name       string
	def        string
	hasDefault bool
}

// blockFields lists every setting of a block type, in declaration order, for readBlock. The settings are plain
// strings with an env tag and at most an envDefault (policy.Settings, policy.RuleSettings and metrics.Settings are
// written so that their own Parse, not the env library, judges every value); anything else is refused here, since
// readBlock would not read it as caarlos0/env does. TestPolicyFields keeps it so.
func blockFields(t reflect.Type) ([]blockField, error) {
	var fields []blockField
	var walk func(t reflect.Type, index []int) error
	walk = func(t reflect.Type, index []int) error {
		for i := range t.NumField() {
			f := t.Field(i)
			at := append(index[:len(index):len(index)], i)
			tag, hasTag := f.Tag.Lookup("env")
			switch {
			case !f.IsExported():
				return fmt.Errorf("config: policy setting field %s is not exported: caarlos0/env would not set it", f.Name)
			case f.Tag.Get("envPrefix") != "":
				return fmt.Errorf("config: policy setting field %s has an envPrefix tag, which readBlock does not apply", f.Name)
			case !hasTag && f.Type.Kind() == reflect.Struct:
				if err := walk(f.Type, at); err != nil {
					return err
				}
			case tag == "" || strings.Contains(tag, ","):
				return fmt.Errorf("config: policy setting field %s has env tag %q: readBlock reads only a plain name", f.Name, tag)
			case f.Type.Kind() != reflect.String:
				return fmt.Errorf("config: policy setting %s is a %s: readBlock reads only strings (let the settings' Parse judge the value)", tag, f.Type)
			default:
				def, hasDefault := f.Tag.Lookup("envDefault")
				fields = append(fields, blockField{index: at, name: tag, def: def, hasDefault: hasDefault})
			}
		}
		return nil
	}
	if err := walk(t, nil); err != nil {
		return nil, err
	}
	return fields, nil
}

// policyFields lists every setting of policyBlock.
func policyFields() ([]blockField, error) { return blockFields(reflect.TypeOf(policyBlock{})) }

// metricFields lists every setting of metricBlock.
func metricFields() ([]blockField, error) { return blockFields(reflect.TypeOf(metricBlock{})) }

// readPolicy reads the policy block under prefix from vars (the whole environment as a map), with POLICY_DEFAULT_X
// filling prefix+X wherever that is unset. It returns the policy's variables after that (prefix+X for every setting
// X that is set either way) and the block filled from them as caarlos0/env fills it: a variable that is unset or
// empty takes its envDefault, if any.
//
// It looks up only the policy's own settings, so that reading n policies costs n times one policy: copying the
// whole environment for every policy (and having caarlos0/env convert the process environment to a map again for
// every policy) made loading quadratic in the number of policies.
func readPolicy(vars map[string]string, prefix string, fields []blockField) (map[string]string, policyBlock) {
	var b policyBlock
	local := readBlock(vars, prefix, "POLICY_DEFAULT_", fields, reflect.ValueOf(&b).Elem(), func(f blockField) string { return f.def })
	return local, b
}

// readBlock fills the fields of v from vars: prefix+NAME, else shared+NAME (the POLICY_DEFAULT_ variable of the same
// setting); a setting that is unset or empty either way takes fallback(field). It returns the block's variables as
// set either way, under prefix.
func readBlock(vars map[string]string, prefix, shared string, fields []blockField, v reflect.Value, fallback func(blockField) string) map[string]string {
	local := make(map[string]string, len(fields))
	for _, f := range fields {
		key := prefix + f.name
		val, set := vars[key]
		if !set {
			val, set = vars[shared+f.name]
		}
		if set {
			local[key] = val
		}
		if val == "" {
			val = fallback(f)
		}
		v.FieldByIndex(f.index).SetString(val)
	}
	return local
}
