#!/usr/bin/env bash
# report.sh: DIR/summary.tsv (written by run.sh --out DIR) to
#   DIR/results.md   markdown: one summary table, then every figure
#   DIR/compare.png  a chart: a panel per scenario for the rate, one for
#                    the server's CPU time per operation, and for hold
#                    the memory per connection, the connections held and
#                    the CPU per connection opened; a bar per server, log
#                    scale (gnuplot; skipped with a message without it)
#
#   tests/bench/report.sh DIR [TITLE [PNG-NAME]]
#
# TITLE heads results.md and the chart (default: echod and its peers,
# side by side); PNG-NAME is the chart's file name in DIR (compare.png).
set -euo pipefail

DIR=${1:?usage: report.sh DIR [TITLE [PNG-NAME]]}
TITLE=${2:-echod and its peers, side by side}
PNG=${3:-compare.png}
TSV=$DIR/summary.tsv
[ -s "$TSV" ] || { echo "report.sh: $TSV: missing or empty" >&2; exit 66; }

# A figure is "failed" if the run had errors or measured nothing; but
# memory per held connection is divided by the connections really held,
# so it stands even if some did not open (the label says how many).
# shellcheck disable=SC2016
AWK_COMMON='
BEGIN { FS = "\t" }
/^#/ { next }
{
	scen = $1; srv = $2
	if (!(srv in seen)) { seen[srv] = 1; order[++nsrv] = srv; echo[srv] = $3 }
	key = scen SUBSEP srv
	conns[key] = $4; value[key] = $5; unit[scen] = $6; open[key] = $7
	p50[key] = $8; p99[key] = $9; errs[key] = $10; rss[key] = $11
	pss[key] = $12; cpu[key] = $13; cpuper[scen] = $14; cpus[key] = $15
	coarse[key] = $16; procs[key] = $17; rc[key] = $18
	have[key] = 1
}
# The server CPU per operation counts like the rate: not with errors
# (but hold: per connection opened, whatever did not open).
function badcpu(key) {
	if (cpu[key] == "" || cpu[key] == "-") return 1
	if (key ~ /^hold/) return 0
	return errs[key] != "" && errs[key] != "-" && errs[key] + 0 > 0
}
# "~": coarse (clock ticks could move it by a tenth).
function cpucell(scen, srv,   key) {
	key = scen SUBSEP srv
	if (!have[key] || cpu[key] == "" || cpu[key] == "-") return "-"
	return (coarse[key] == 1 ? "~" : "") num(cpu[key]) errnote(key)
}
function bad(key) {
	if (value[key] == "" || value[key] == "-" || value[key] + 0 <= 0)
		return 1
	if (key ~ /^hold/) return 0
	return errs[key] != "" && errs[key] != "-" && errs[key] + 0 > 0
}
function num(v,   a) {
	if (v == "" || v == "-") return "-"
	a = v < 0 ? -v : v + 0	# PSS can shrink: a growth below 0
	if (a >= 100) return sprintf("%.0f", v)
	if (a >= 10) return sprintf("%.1f", v)
	return sprintf("%.2f", v)
}
function cell(scen, srv,   key, s) {
	key = scen SUBSEP srv
	if (!have[key]) return "-"
	if (scen == "hold") {
		s = open[key] "/" conns[key]
		if (value[key] != "" && value[key] != "-")
			s = s ", " num(value[key]) " B"
	} else
		s = num(value[key])
	s = s errnote(key)
	if (rc[key] ~ /server_died/) s = s " (died)"
	if (rc[key] ~ /not_started/) s = "not started"
	return s
}
function errnote(key) {
	if (errs[key] == "" || errs[key] == "-" || errs[key] + 0 == 0) return ""
	return " (" errs[key] (errs[key] + 0 == 1 ? " error)" : " errors)")
}
'

SCENS="conn pp32 pp256 bulk hold"

awk -v scens="$SCENS" "$AWK_COMMON"'
END {
	ns = split(scens, sc, " ")
	print "| server | echo | conn (conn/s) | pp32 (rt/s) | pp256 (rt/s) | bulk (MB/s) | hold (held, PSS/conn) |"
	print "|---|---|--:|--:|--:|--:|--:|"
	for (i = 1; i <= nsrv; i++) {
		srv = order[i]
		line = "| " srv " | " echo[srv]
		for (j = 1; j <= ns; j++) line = line " | " cell(sc[j], srv)
		print line " |"
	}
	print ""
	print "Server CPU per operation, microseconds (user + system time of all"
	print "its processes, reaped children included, over the measured seconds;"
	print "~: coarse, the rounding of clock ticks could move it by a tenth):"
	print ""
	print "| server | conn (us/conn) | pp32 (us/rt) | pp256 (us/rt) | bulk (us/MB) | hold (us/conn opened) |"
	print "|---|--:|--:|--:|--:|--:|"
	for (i = 1; i <= nsrv; i++) {
		srv = order[i]
		line = "| " srv
		for (j = 1; j <= ns; j++) line = line " | " cpucell(sc[j], srv)
		print line " |"
	}
	print ""
	print "| scenario | server | echo | connections | rate | server CPU us/op | server CPU s | processes | p50 us | p99 us | errors | RSS kB | PSS kB | exit |"
	print "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
	for (j = 1; j <= ns; j++)
		for (i = 1; i <= nsrv; i++) {
			key = sc[j] SUBSEP order[i]
			if (!have[key]) continue
			r = sc[j] == "hold" ? open[key] " held, " num(value[key]) " B/conn" : num(value[key]) " " unit[sc[j]]
			c = cpucell(sc[j], order[i])
			if (c != "-") c = c "/" cpuper[sc[j]]
			printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			    sc[j], order[i], echo[order[i]], conns[key], r, c,
			    cpus[key], procs[key], num(p50[key]), num(p99[key]),
			    errs[key], rss[key], pss[key], rc[key]
		}
}' "$TSV" >"$DIR/results.body.md"

{
	echo "# $TITLE"
	echo
	head -n 3 "$DIR/table.txt" 2>/dev/null |
		sed -n 's/^echo benchmark: \(.*\)/Each figure: \1./p'
	echo
	cat "$DIR/results.body.md"
	echo
	echo "**echo**: *upper* = every reply checked to be the uppercase of what"
	echo "was sent (echod, ref, and tcpserver/socat/ncat running"
	echo "tests/bench/upcase.c per connection); *plain* = the inetds' internal"
	echo "echo service, checked to send the bytes back unchanged."
	echo "**conn**: connect, one 64-byte line, close, 32 at once from 16"
	echo "source addresses.  **pp32/pp256**: 64-byte round trips on 32/256"
	echo "connections.  **bulk**: one connection, 256 KiB in flight."
	echo "**hold**: idle connections held, then each checked to still echo;"
	echo "PSS/conn = the server's memory growth per connection (user space"
	echo "only).  **Server CPU per operation**: what the server's whole process"
	echo "tree spent (user + system, reaped children included) during the"
	echo "measured seconds, divided by the connections, round trips or MB it"
	echo "served then; hold: during the set-up, per connection opened.  It"
	echo "shows what the server costs even where the load generator, on the"
	echo "same CPUs, is what limits the rate.  A figure with errors is not a"
	echo "result: see the last table."
	# run.sh --baseline: the paired ratios, as it printed them.
	if grep -q '^ratio to ' "$DIR/table.txt" 2>/dev/null; then
		echo
		echo '```'
		sed -n '/^ratio to /,/^$/p' "$DIR/table.txt" | sed '/^$/d'
		echo '```'
	fi
} >"$DIR/results.md"
rm -f "$DIR/results.body.md"
echo "report.sh: wrote $DIR/results.md" >&2

if ! command -v gnuplot >/dev/null 2>&1; then
	echo "report.sh: gnuplot not installed: no chart (apt-get install gnuplot-nox)" >&2
	exit 0
fi

# The chart: a gnuplot script with the data inline, one panel per
# scenario; a failed figure is a grey "failed" label at the bottom.
awk -v scens="$SCENS" "$AWK_COMMON"'
END {
	split("#1f77b4 #d62728 #2ca02c #ff7f0e #9467bd #8c564b #e377c2 #7f7f7f", col, " ")
	title["conn"] = "conn: connections/s (32 at once)"
	title["pp32"] = "pp32: round trips/s (32 conns)"
	title["pp256"] = "pp256: round trips/s (256 conns)"
	title["bulk"] = "bulk: MB/s (1 conn, 256 KiB in flight)"
	title["hold"] = "hold: PSS bytes per idle conn (lower is better)"
	cpuunit["conn"] = "connection"; cpuunit["pp32"] = "round trip"
	cpuunit["pp256"] = "round trip"; cpuunit["bulk"] = "MB"
	ns = split(scens, sc, " ")
	print "set terminal pngcairo size 1800,1250 font \"DejaVu Sans,10\""
	print "set output \"" out "\""
	print "set multiplot layout 3,4 title \"" ttl " (" stamp ")\" font \",13\""
	print "set style fill solid 0.85 border -1"
	print "set boxwidth 0.7"
	print "set grid ytics mytics lc rgb \"#dddddd\""
	print "unset key"
	print "set xtics rotate by -30 nomirror"
	print "set ytics nomirror"
	printf "set xrange [-0.6:%f]\n", nsrv - 0.4
	for (j = 1; j <= ns; j++)
		if (sc[j] != "hold") panel(sc[j], "rate", title[sc[j]])
	for (j = 1; j <= ns; j++)
		if (sc[j] != "hold")
			panel(sc[j], "cpu", sprintf("%s: server CPU us per %s (lower is better)", sc[j], cpuunit[sc[j]]))
	panel("hold", "rate", title["hold"])
	panel("hold", "held", "hold: idle connections held (of those asked)")
	panel("hold", "cpu", "hold: server CPU us per connection opened")
	# the last panel: the legend, as text
	print "unset logscale y; unset grid; unset xtics; unset ytics; unset border"
	print "set xrange [0:1]; set yrange [0:1]"
	print "set title \"servers\""
	for (i = 1; i <= nsrv; i++) {
		srv = order[i]
		printf "set label %d \"%s: %s echo\" at 0.1,%f textcolor rgb \"%s\" font \",11\"\n",
		    i, srv, echo[srv] == "plain" ? "plain (unchanged)" : "uppercase",
		    0.9 - (i - 1) * 0.1, col[(i - 1) % 8 + 1]
	}
	for (i = 1; i <= nsrv; i++) if (echo[order[i]] == "plain") anyplain = 1
	if (anyplain)
		printf "set label %d \"%s\" at 0.1,%f font \",9\"\n", nsrv + 1,
		    "plain = inetd internal echo, bytes sent back unchanged", 0.9 - nsrv * 0.1
	print "plot NaN notitle"
	print "unset multiplot"
}
# One panel: what = rate (the figure of the scenario), cpu (server CPU per
# operation) or held (connections held); a failed figure is a grey label.
function fig(key, what) {
	if (what == "cpu") return cpu[key]
	if (what == "held") return open[key]
	return value[key]
}
function failed(key, what) {
	if (what == "cpu") return badcpu(key)
	if (what == "held") return open[key] == "" || open[key] == "-"
	return bad(key)
}
function panel(scen, what, t,   i, key, any, lo, hi, v, c) {
	any = 0
	for (i = 1; i <= nsrv; i++) if (have[scen SUBSEP order[i]]) any = 1
	if (!any) return
	lo = 0; hi = 0
	for (i = 1; i <= nsrv; i++) {
		key = scen SUBSEP order[i]
		if (!have[key] || failed(key, what)) continue
		v = fig(key, what) + 0
		if (v <= 0) continue
		if (lo == 0 || v < lo) lo = v
		if (v > hi) hi = v
	}
	if (hi == 0) { lo = 1; hi = 10 }
	lo = lo / 4; hi = hi * (scen == "hold" ? 10 : 4)
	print "set logscale y"
	print "set format y \"10^{%L}\""
	print "set title \"" t "\""
	printf "set yrange [%g:%g]\n", lo, hi
	printf "set xtics ("
	for (i = 1; i <= nsrv; i++)
		printf "%s\"%s%s\" %d", (i > 1 ? ", " : ""), order[i],
		    echo[order[i]] == "plain" ? " (plain)" : "", i - 1
	print ")"
	printf "plot \"-\" using 1:2:3 with boxes lc rgb variable, \"-\" using 1:2:3 with labels offset 0,%s font \",9\"\n", scen == "hold" && what == "rate" ? "1.3" : "0.7"
	for (i = 1; i <= nsrv; i++) {
		key = scen SUBSEP order[i]
		c = col[(i - 1) % 8 + 1]
		if (have[key] && !failed(key, what) && fig(key, what) + 0 > 0)
			printf "%d %s %d\n", i - 1, fig(key, what) + 0, hex(c)
	}
	print "e"
	for (i = 1; i <= nsrv; i++) {
		key = scen SUBSEP order[i]
		if (!have[key]) continue
		if (failed(key, what) || fig(key, what) + 0 <= 0)
			printf "%d %g \"%s\"\n", i - 1, lo * 1.6,
			    errnote(key) != "" && scen != "hold" ? substr(errnote(key), 3, length(errnote(key)) - 3) : (fig(key, what) != "" && fig(key, what) != "-" ? "0 or less" : "no result")
		else if (scen == "hold" && what == "rate" && errnote(key) != "")
			printf "%d %s \"%s\\n(%s held)\"\n", i - 1,
			    value[key] + 0, num(value[key]), open[key]
		else if (what == "held")
			printf "%d %s \"%s/%s\"\n", i - 1, open[key] + 0, open[key], conns[key]
		else printf "%d %s \"%s\"\n", i - 1, fig(key, what) + 0, num(fig(key, what))
	}
	print "e"
}
function hex(s,   i, n, d) {
	n = 0
	for (i = 2; i <= length(s); i++) {
		d = index("0123456789abcdef", tolower(substr(s, i, 1))) - 1
		n = n * 16 + d
	}
	return n
}' out="$DIR/$PNG" ttl="$TITLE" stamp="$(date +%Y-%m-%d), $(nproc) CPUs shared with the client" \
	"$TSV" >"$DIR/${PNG%.png}.gp"
if gnuplot "$DIR/${PNG%.png}.gp" 2>"$DIR/${PNG%.png}.gp.log"; then
	echo "report.sh: wrote $DIR/$PNG" >&2
else
	echo "report.sh: gnuplot failed (see $DIR/${PNG%.png}.gp.log):" >&2
	tail -n 5 "$DIR/${PNG%.png}.gp.log" >&2
	exit 1
fi
