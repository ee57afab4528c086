//go:build solaris

package platform

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"time"
)

// On illumos and Solaris init(8) records the boot in /var/adm/utmpx (what
// who -b prints), per zone. The file is an array of struct futmpx
// (<utmpx.h>): 372 bytes, ut_type (int16) at offset 72, ut_tv.tv_sec
// (int32) at 80; BOOT_TIME is type 2. Not yet run on a real host.
const (
	utmpxFile     = "/var/adm/utmpx"
	futmpxSize    = 372
	futmpxTypeOff = 72
	futmpxSecOff  = 80
	utmpxBootTime = 2
)

func systemBootTime() (time.Time, error) {
	f, err := os.Open(utmpxFile)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	return lastBootRecord(f)
}

// lastBootRecord returns the time of the last BOOT_TIME record.
func lastBootRecord(r io.Reader) (time.Time, error) {
	var boot time.Time
	rec := make([]byte, futmpxSize)
	for {
		if _, err := io.ReadFull(r, rec); err != nil {
			break
		}
		if int16(binary.NativeEndian.Uint16(rec[futmpxTypeOff:])) == utmpxBootTime {
			boot = time.Unix(int64(int32(binary.NativeEndian.Uint32(rec[futmpxSecOff:]))), 0)
		}
	}
	if boot.IsZero() {
		return boot, errors.New(utmpxFile + " has no boot record")
	}
	return boot, nil
}
