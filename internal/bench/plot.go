package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// writePlot writes plot.dat and plot.gp (the repeated poll and the first
// login against the mailbox size, one line per server) and, where
// gnuplot is installed, bench.png.
func writePlot() {
	var dat strings.Builder
	dat.WriteString("# size_MB")
	for _, row := range []string{"poll", "first"} {
		for _, s := range servers {
			fmt.Fprintf(&dat, " %s:%s", row, s.key)
		}
	}
	dat.WriteString("\n")
	n := 0
	for _, r := range results {
		if r.Cells["poll"] == nil {
			continue
		}
		n++
		fmt.Fprintf(&dat, "%.3f", float64(r.Bytes)/1e6)
		for _, row := range []string{"poll", "first"} {
			for _, s := range servers {
				v := r.med(row, s.key)
				if math.IsNaN(v) {
					dat.WriteString(" ?")
				} else {
					fmt.Fprintf(&dat, " %.3f", v)
				}
			}
		}
		dat.WriteString("\n")
	}
	datPath := filepath.Join(*outDir, "plot.dat")
	os.WriteFile(datPath, []byte(dat.String()), 0644)
	if n == 0 {
		return
	}
	var gp strings.Builder
	fmt.Fprintf(&gp, `set terminal pngcairo size 1200,520 font ",10"
set output %q
set datafile missing "?"
set logscale xy
set grid
set key top left
set xlabel "mailbox size (MB)"
set ylabel "median session time (ms)"
set multiplot layout 1,2 title "scripts/bench: popper vs Dovecot 2.3 vs popa3d, loopback, one process per session"
`, filepath.Join(*outDir, "bench.png"))
	for i, title := range []string{"repeated poll (USER/PASS, STAT, UIDL, QUIT; no change)", "first login on a spool never served"} {
		fmt.Fprintf(&gp, "set title %q\nplot ", title)
		for j, s := range servers {
			if j > 0 {
				gp.WriteString(", ")
			}
			fmt.Fprintf(&gp, "%q using 1:%d with linespoints lw 2 pt 7 title %q", datPath, 2+i*len(servers)+j, s.name)
		}
		gp.WriteString("\n")
	}
	gp.WriteString("unset multiplot\n")
	gpPath := filepath.Join(*outDir, "plot.gp")
	os.WriteFile(gpPath, []byte(gp.String()), 0644)
	if p, err := exec.LookPath("gnuplot"); err == nil {
		if out, err := exec.Command(p, gpPath).CombinedOutput(); err != nil {
			logf("gnuplot: %v: %s", err, out)
		}
	}
}
