package compat

import "math"

// Atoi is C's atoi as qpopper parses message numbers and TOP's line
// count (pop_list.c, pop_send.c, pop_dele.c, pop_uidl.c): leading blanks
// and one sign, then decimal digits up to the first other byte; no digit
// is 0. It is glibc's strtol cast to a 32-bit int: past the range of a
// long it saturates, and the cast keeps the low 32 bits, so
// "4294967297" is 1 and a huge number is -1.
func Atoi(s string) int {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] >= '\t' && s[i] <= '\r') {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	var v uint64
	over := false
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		if v > (math.MaxInt64+1-d)/10 {
			over = true
			continue
		}
		v = v*10 + d
	}
	var n int64
	switch {
	case over || !neg && v > math.MaxInt64:
		n = math.MaxInt64
		if neg {
			n = math.MinInt64
		}
	case neg:
		n = -int64(v)
	default:
		n = int64(v)
	}
	return int(int32(n))
}
