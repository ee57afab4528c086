package auth

import (
	"crypto/des"
	"crypto/rand"
	"encoding/binary"
	"testing"
)

// TestDESIsDES checks the DES rounds of descrypt.go, and so its FIPS 46
// tables, against crypto/des: with no salt, one pass is plain DES and
// several passes are DES applied again to its own output.
func TestDESIsDES(t *testing.T) {
	for range 200 {
		var key, block [8]byte
		rand.Read(key[:])
		rand.Read(block[:])
		c, err := des.NewCipher(key[:])
		if err != nil {
			t.Fatal(err)
		}
		want := block
		k := newDESKey(binary.BigEndian.Uint64(key[:]))
		for count := 1; count <= 3; count++ {
			c.Encrypt(want[:], want[:])
			got := k.encrypt(binary.BigEndian.Uint64(block[:]), 0, count)
			if got != binary.BigEndian.Uint64(want[:]) {
				t.Fatalf("key %x block %x, %d passes: got %016x, crypto/des %x", key, block, count, got, want)
			}
		}
	}
}

// TestDESSaltSwapsE checks the salt's effect on its own: a mask bit swaps
// E output bits i+1 and i+25, so it changes the result unless those two
// bits of E(R) are equal in every round, and the mask of a salt is its
// bits reversed into 24.
func TestDESSaltSwapsE(t *testing.T) {
	if got := saltMask(1); got != 1<<23 {
		t.Errorf("saltMask(1) = %06x, want 800000", got)
	}
	if got := saltMask(0xfff); got != 0xfff000 {
		t.Errorf("saltMask(0xfff) = %06x, want fff000", got)
	}
	k := newDESKey(desKeyBlock("password"))
	plain := k.encrypt(0, 0, 25)
	seen := map[uint64]bool{plain: true}
	for i := range 24 {
		out := k.encrypt(0, saltMask(1<<i), 25)
		if seen[out] {
			t.Errorf("salt bit %d gives a result already seen", i)
		}
		seen[out] = true
	}
}

func TestDESKeyBlock(t *testing.T) {
	for _, c := range []struct {
		pw   string
		want uint64
	}{
		{"", 0},
		{"a", 0xc2 << 56},
		{"ABCDEFGH", 0x828486888a8c8e90},
		{"ABCDEFGHIJ", 0x828486888a8c8e90},  // the ninth byte on is ignored
		{"\xc1BCDEFGH", 0x828486888a8c8e90}, // so is each byte's high bit
	} {
		if got := desKeyBlock(c.pw); got != c.want {
			t.Errorf("desKeyBlock(%q) = %016x, want %016x", c.pw, got, c.want)
		}
	}
}
