package compat

import "fmt"

// clearTextRank orders clear-text-password from the most permissive:
// always (even for APOP users), default, then local and TLS (each allows
// it only in some sessions), never.
var clearTextRank = map[string]int{"always": 0, "default": 1, "local": 2, "TLS": 2, "never": 3}

// Warnings lists settings that may not do what their reader expects:
//
//   - a clear-text-password made weaker by a later flag or file: flags
//     and files apply left to right, as in qpopper, so "-p 4 -f FILE"
//     loses -p 4 when FILE sets the option;
//   - reverse-lookup set in a file: it has qpopper 4.0.5's inverted
//     sense, so "set reverse-lookup = true" turns lookups off.
func (o *Options) Warnings() []string {
	var out []string
	var prev *setting
	var lookup *setting
	for i := range o.set {
		s := &o.set[i]
		switch s.name {
		case "clear-text-password":
			if prev != nil && clearTextRank[s.value] < clearTextRank[prev.value] {
				out = append(out, fmt.Sprintf(
					"clear-text-password %s (%s) is undone by %s (%s), which allows more: flags and files apply left to right, as in qpopper",
					prev.value, prev.where, s.value, s.where))
			}
			prev = s
		case "reverse-lookup":
			lookup = s
		}
	}
	if lookup != nil && lookup.where != "" && lookup.where[0] != '-' {
		effect := "on"
		if lookup.value == "true" {
			effect = "off"
		}
		out = append(out, fmt.Sprintf(
			"reverse-lookup = %s (%s) turns host-name lookups %s: the option keeps qpopper 4.0.5's inverted sense, in which true means no lookups, as -R",
			lookup.value, lookup.where, effect))
	}
	return out
}

// Ineffective lists the options set, to other than their defaults, that
// do nothing in this configuration. Options popper does not support at
// all are in Notes instead.
func (o *Options) Ineffective() []string {
	last := map[string]setting{}
	var order []string
	for _, s := range o.set {
		if _, seen := last[s.name]; !seen {
			order = append(order, s.name)
		}
		last[s.name] = s
	}
	var out []string
	for _, name := range order {
		s := last[name]
		if opt, _ := Lookup(name); s.value == opt.Default {
			continue
		}
		why := ""
		switch name {
		case "tls-server-cert-file", "tls-private-key-file", "tls-cipher-list", "tls-version",
			"tls-identity-file", "tls-passphrase":
			if !o.TLSRequested() {
				why = "TLS is not used (tls-support none, clear-text-password not TLS)"
			}
		case "max-bulletins", "group-bulletins":
			if o.BullDir == "" {
				why = "no bulletins without bulldir"
			}
		}
		if why != "" {
			out = append(out, fmt.Sprintf("%s (%s) has no effect: %s", name, s.where, why))
		}
	}
	return out
}
