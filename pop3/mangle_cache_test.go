package pop3

import "testing"

// TestMangleCache: every size and kind comes back as it was set, the
// sizes that do not fit 31 bits too, and an unset message is unknown.
func TestMangleCache(t *testing.T) {
	infos := []mangleInfo{{size: 0}, {size: 0, asIs: true}, {size: 12345}, {size: 12345, asIs: true},
		{size: asIsBit - 3}, {size: asIsBit - 3, asIs: true}, {size: asIsBit - 2}, {size: 5 << 30, asIs: true}, {size: 1 << 40}}
	var c mangleCache
	for i, mi := range infos {
		c.set(i, len(infos)+1, mi)
	}
	for i, mi := range infos {
		if got, ok := c.get(i); !ok || got != mi {
			t.Errorf("message %d: got %+v, %v, want %+v", i, got, ok, mi)
		}
	}
	if _, ok := c.get(len(infos)); ok {
		t.Error("a message never set is known")
	}
	if len(c.big) != 3 {
		t.Errorf("%d sizes kept apart, want 3", len(c.big))
	}
}
