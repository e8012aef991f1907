// Command grafana-check validates Grafana dashboard JSON files against Grafana's dashboard
// schema, as published in the generated Go types of the Grafana Foundation SDK
// (github.com/grafana/grafana-foundation-sdk/go, pinned in go.mod). No Grafana server is
// needed.
//
// Usage: grafana-check FILE...
//
// Every problem is printed as one line, "FILE: PATH (panel ID "TITLE"): MESSAGE", and the
// exit status is 1 if any file has one (2 for a usage error).
//
// What is checked, in order:
//
//  1. The SDK's strict decoder (Dashboard.UnmarshalJSONStrict), with every panel and data
//     query plugin the SDK knows registered: required fields present, every value of the
//     type the schema gives it, no field the schema does not have. It covers the dashboard,
//     its rows and panels (gridPos, datasource, links, transformations), each panel's
//     options and fieldConfig.defaults.custom by the panel plugin's own schema, each
//     query by its data source's schema (Prometheus: expr, refId, legendFormat, ...), the
//     template variables and the annotations.
//  2. What that decoder leaves loose, with the SDK's own strict decoders: the rest of
//     fieldConfig (defaults and overrides), and queries that name no data source type
//     themselves but inherit the panel's.
//  3. Panel types and query data source types the SDK has no schema for are reported,
//     since nothing in them could be checked.
//  4. Once every value has the right type: the schema's value constraints (the SDK's
//     Validate methods: gridPos within the 24-column grid with positive size, a panel
//     type, ...), on the dashboard and on each panel's plugin options and custom field
//     config.
//
// Not checked: enum values (the SDK decodes them as plain strings), fields whose schema type
// is "any", what a PromQL expression says, whether panels overlap, and anything Grafana
// only decides when it loads the dashboard (migrations from older schemaVersions).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

type problem struct {
	path    string
	message string
}

// problems collects what is found, once each, in the order found.
type problems struct {
	list []problem
	seen map[problem]bool
}

func (p *problems) add(path, message string) {
	found := problem{path, message}
	if p.seen == nil {
		p.seen = map[problem]bool{}
	}
	if !p.seen[found] {
		p.seen[found] = true
		p.list = append(p.list, found)
	}
}

var (
	unexpectedField = regexp.MustCompile(`^unexpected field '(.*)'$`)
	wrongType       = regexp.MustCompile(`^json: cannot unmarshal (\w+) into Go (?:value|struct field \S+) of type (.+)$`)
)

// addError adds what one of the SDK's decoders or validators returned, its paths under
// prefix. The SDK returns a (possibly empty) cog.BuildErrors even when all is well.
func (p *problems) addError(prefix string, err error) {
	if err == nil {
		return
	}
	var built cog.BuildErrors
	if !errors.As(err, &built) {
		p.add(prefix, describe(err.Error()))
		return
	}
	for _, one := range built {
		path, message := one.Path, one.Message
		// "panels[3].GridPos: unexpected field 'z'" names the Go type: name the field.
		if match := unexpectedField.FindStringSubmatch(message); match != nil {
			cut := strings.LastIndex(path, ".") + 1
			if tail := path[cut:]; tail != "" && tail[0] >= 'A' && tail[0] <= 'Z' {
				path = path[:cut] + match[1]
				message = "not a field of the schema"
			}
		}
		// Validate() names the member of PanelOrRowPanel: "panels[3].Panel.gridPos".
		path = strings.NewReplacer("].Panel.", "].", "].RowPanel.", "].").Replace(path)
		p.add(join(prefix, path), describe(message))
	}
}

func describe(message string) string {
	if match := wrongType.FindStringSubmatch(message); match != nil {
		return fmt.Sprintf("wrong type: %s where the schema wants %s", match[1], match[2])
	}
	return message
}

func join(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "" || strings.HasPrefix(path, "["):
		return prefix + path
	default:
		return prefix + "." + path
	}
}

// The raw document, walked by path to name panels and variables.
type object = map[string]json.RawMessage

func decodeObject(raw json.RawMessage) (object, bool) {
	var fields object
	return fields, json.Unmarshal(raw, &fields) == nil && fields != nil
}

func decodeArray(raw json.RawMessage) []json.RawMessage {
	var items []json.RawMessage
	_ = json.Unmarshal(raw, &items)
	return items
}

func stringField(fields object, name string) string {
	var value string
	_ = json.Unmarshal(fields[name], &value)
	return value
}

// datasourceType is the "type" of a "datasource" reference, or "".
func datasourceType(fields object) string {
	reference, _ := decodeObject(fields["datasource"])
	return stringField(reference, "type")
}

type located struct {
	path   string
	fields object
}

// panelPaths lists every panel (rows and the panels collapsed rows hold) with its path.
func panelPaths(document object) []located {
	var panels []located
	var walk func(prefix string, raw json.RawMessage)
	walk = func(prefix string, raw json.RawMessage) {
		for i, item := range decodeArray(raw) {
			path := prefix + "[" + strconv.Itoa(i) + "]"
			if fields, ok := decodeObject(item); ok {
				panels = append(panels, located{path, fields})
				walk(path+".panels", fields["panels"])
			}
		}
	}
	walk("panels", document["panels"])
	return panels
}

// where names the panel or variable a path is in, for the reader.
func where(path string, panels []located, variables []json.RawMessage) string {
	var best *located
	for i, panel := range panels {
		if within(path, panel.path) && (best == nil || len(panel.path) > len(best.path)) {
			best = &panels[i]
		}
	}
	if best != nil {
		return fmt.Sprintf(" (panel %s %q)", string(best.fields["id"]), stringField(best.fields, "title"))
	}
	for i, raw := range variables {
		prefix := "templating.list[" + strconv.Itoa(i) + "]"
		if within(path, prefix) {
			fields, _ := decodeObject(raw)
			return fmt.Sprintf(" (variable %q)", stringField(fields, "name"))
		}
	}
	return ""
}

func within(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+".") || strings.HasPrefix(path, prefix+"[")
}

// checkPanel adds what the strict dashboard decoder leaves loose for one panel.
func checkPanel(found *problems, path string, panel object) {
	panelType := stringField(panel, "type")
	if panelType == "row" {
		return
	}
	if _, known := cog.ConfigForPanelcfgVariant(panelType); !known {
		found.add(path+".type", fmt.Sprintf(
			"panel type %q has no schema in the SDK, so its options and custom field config are unchecked",
			panelType))
	}
	if raw, ok := panel["fieldConfig"]; ok && string(raw) != "null" {
		var fieldConfig dashboard.FieldConfigSource
		found.addError(path+".fieldConfig", fieldConfig.UnmarshalJSONStrict(raw))
	}
	for i, raw := range decodeArray(panel["targets"]) {
		target, _ := decodeObject(raw)
		queryType := datasourceType(target)
		if queryType == "" {
			queryType = datasourceType(panel)
		}
		targetPath := path + ".targets[" + strconv.Itoa(i) + "]"
		query, err := cog.StrictUnmarshalDataquery(raw, queryType)
		if _, unknown := query.(variants.UnknownDataquery); unknown {
			found.add(targetPath, fmt.Sprintf(
				"data source type %q has no query schema in the SDK, so the query is unchecked", queryType))
			continue
		}
		found.addError(targetPath, err)
	}
}

type validator interface{ Validate() error }

// validate runs the schema's value constraints. The strict decoder drops every panel it
// decodes (it cannot tell an empty error list from an error), so this runs on the
// non-strict decoding, which keeps them, with their plugin options and custom field config.
func validate(found *problems, raw []byte) {
	var loose dashboard.Dashboard
	if json.Unmarshal(raw, &loose) != nil {
		return // the strict decoder has said why
	}
	found.addError("", loose.Validate())
	panelValues := func(prefix string, panel *dashboard.Panel) {
		for _, value := range []struct {
			name  string
			value any
		}{{"options", panel.Options}, {"fieldConfig.defaults.custom", fieldConfigCustom(panel)}} {
			check, ok := value.value.(validator)
			if reflected := reflect.ValueOf(check); ok && !(reflected.Kind() == reflect.Pointer && reflected.IsNil()) {
				found.addError(prefix+"."+value.name, check.Validate())
			}
		}
	}
	for i, item := range loose.Panels {
		path := "panels[" + strconv.Itoa(i) + "]"
		if item.Panel != nil {
			panelValues(path, item.Panel)
		}
		if item.RowPanel != nil {
			for j := range item.RowPanel.Panels {
				panelValues(path+".panels["+strconv.Itoa(j)+"]", &item.RowPanel.Panels[j])
			}
		}
	}
}

func fieldConfigCustom(panel *dashboard.Panel) any {
	if panel.FieldConfig == nil {
		return nil
	}
	return panel.FieldConfig.Defaults.Custom
}

// check returns the problems of one dashboard document.
func check(raw []byte) []problem {
	var found problems
	var document object
	if err := json.Unmarshal(raw, &document); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			line := 1 + strings.Count(string(raw[:syntax.Offset]), "\n")
			found.add("line "+strconv.Itoa(line), "not JSON: "+err.Error())
		} else {
			found.add("(document)", "not a JSON object: "+err.Error())
		}
		return found.list
	}
	var strict dashboard.Dashboard
	found.addError("", strict.UnmarshalJSONStrict(raw))
	for _, panel := range panelPaths(document) {
		checkPanel(&found, panel.path, panel.fields)
	}
	validate(&found, raw)
	return found.narrowest()
}

// narrowest leaves out a problem that another one says again at a place within it (the
// dashboard decoder reads fieldConfig loosely, but still fails on a wrong type in it).
func (p *problems) narrowest() []problem {
	var kept []problem
	for _, one := range p.list {
		repeated := false
		for _, other := range p.list {
			if other.message == one.message && other.path != one.path && within(other.path, one.path) {
				repeated = true
				break
			}
		}
		if !repeated {
			kept = append(kept, one)
		}
	}
	return kept
}

func main() {
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") {
		fmt.Fprintln(os.Stderr, "usage: grafana-check FILE...")
		os.Exit(2)
	}
	plugins.RegisterDefaultPlugins()
	failed := false
	for _, name := range os.Args[1:] {
		raw, err := os.ReadFile(name)
		if err != nil {
			fmt.Printf("%s: %v\n", name, err)
			failed = true
			continue
		}
		found := check(raw)
		if len(found) == 0 {
			fmt.Printf("%s: ok\n", name)
			continue
		}
		failed = true
		var document object
		_ = json.Unmarshal(raw, &document)
		templating, _ := decodeObject(document["templating"])
		panels, variables := panelPaths(document), decodeArray(templating["list"])
		for _, one := range found {
			fmt.Printf("%s: %s%s: %s\n", name, one.path, where(one.path, panels, variables), one.message)
		}
	}
	if failed {
		os.Exit(1)
	}
}
