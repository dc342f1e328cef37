<?php
// The PHP peer of `make bench`: stream_socket_client() + stream_socket_enable_crypto().
//   php php_peer.php WORKLOAD port=P ca=FILE n=N bytes=B
// Prints one JSON line on stdout; exit 3 = workload not supported here.

const CHUNK = 16384;

function cpu_seconds(): float {
    $r = getrusage();
    return $r['ru_utime.tv_sec'] + $r['ru_utime.tv_usec'] / 1e6 + $r['ru_stime.tv_sec'] + $r['ru_stime.tv_usec'] / 1e6;
}

function status_kib(string $field): float {
    foreach (file('/proc/self/status') as $line) {
        if (strncmp($line, $field, strlen($field)) === 0) {
            return (float)trim(substr($line, strlen($field)));
        }
    }
    return 0.0;
}

function out(array $a): void { echo json_encode($a), "\n"; }

function fail(string $m): void { fwrite(STDERR, "php peer: $m\n"); exit(2); }

$args = [];
foreach (array_slice($argv, 2) as $a) {
    $p = strpos($a, '=');
    if ($p !== false) $args[substr($a, 0, $p)] = substr($a, $p + 1);
}
$workload = $argv[1] ?? '';
$port = (int)($args['port'] ?? 0);
$n = (int)($args['n'] ?? 0);
$bytes = (int)($args['bytes'] ?? 0);

if ($workload === 'version') {
    out(['version' => 'PHP ' . PHP_VERSION . ' streams (' . OPENSSL_VERSION_TEXT . ')']);
    exit(0);
}

$ctx = stream_context_create([
    'ssl' => [
        'cafile' => $args['ca'] ?? '',
        'peer_name' => 'localhost',
        'verify_peer' => true,
        'verify_peer_name' => true,
        'SNI_enabled' => true,
        'crypto_method' => STREAM_CRYPTO_METHOD_TLSv1_3_CLIENT,
    ],
    'socket' => ['tcp_nodelay' => true],
]);

function tls_connect() {
    global $ctx, $port;
    $s = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 30, STREAM_CLIENT_CONNECT, $ctx);
    if (!$s) fail("connect: $errstr");
    if (stream_socket_enable_crypto($s, true, STREAM_CRYPTO_METHOD_TLSv1_3_CLIENT) !== true) fail('enable_crypto failed');
    return $s;
}

function write_all($s, string $b): void {
    $len = strlen($b);
    $done = 0;
    while ($done < $len) {
        $w = fwrite($s, $done === 0 ? $b : substr($b, $done));
        if ($w === false || $w === 0) fail('write');
        $done += $w;
    }
}

function bulk(float $t0, float $c0, int $bytes): void {
    $wall = hrtime(true) / 1e9 - $t0;
    $cpu = cpu_seconds() - $c0;
    out(['value' => $bytes / $wall / 1e6, 'unit' => 'MB/s', 'wall_s' => $wall, 'cpu_s' => $cpu,
         'cpu_per' => $cpu / ($bytes / 1073741824), 'cpu_unit' => 's/GiB']);
}

switch ($workload) {
case 'send':
    $buf = str_repeat("\x5a", CHUNK);
    $s = tls_connect();
    $t0 = hrtime(true) / 1e9; $c0 = cpu_seconds();
    for ($left = $bytes; $left > 0; $left -= CHUNK) {
        write_all($s, $left >= CHUNK ? $buf : substr($buf, 0, $left));
    }
    if (fread($s, 1) !== 'A') fail('no ack');
    fclose($s);
    bulk($t0, $c0, $bytes);
    break;
case 'recv':
    $s = tls_connect();
    $t0 = hrtime(true) / 1e9; $c0 = cpu_seconds();
    write_all($s, 'g');
    $got = 0;
    while (!feof($s)) {
        $d = fread($s, CHUNK);
        if ($d === false) break;
        $got += strlen($d);
    }
    fclose($s);
    if ($got !== $bytes) fail("received $got of $bytes");
    bulk($t0, $c0, $bytes);
    break;
case 'pingpong':
    $s = tls_connect();
    $msg = str_repeat('a', 64);
    $warm = max(10, intdiv($n, 50));
    $rtt = [];
    $t0 = hrtime(true) / 1e9; $c0 = cpu_seconds();
    for ($i = 0; $i < $warm + $n; $i++) {
        if ($i === $warm) { $t0 = hrtime(true) / 1e9; $c0 = cpu_seconds(); }
        $st = hrtime(true);
        write_all($s, $msg);
        $got = 0;
        while ($got < 64) {
            $d = fread($s, 64 - $got);
            if ($d === false || $d === '') fail('EOF in ping-pong');
            $got += strlen($d);
        }
        if ($i >= $warm) $rtt[] = hrtime(true) - $st;
    }
    $wall = hrtime(true) / 1e9 - $t0; $cpu = cpu_seconds() - $c0;
    sort($rtt);
    fclose($s);
    out(['value' => $rtt[intdiv(count($rtt), 2)] / 1000.0, 'unit' => 'us', 'wall_s' => $wall, 'cpu_s' => $cpu,
         'cpu_per' => $cpu / $n * 1e6, 'cpu_unit' => 'us/RTT']);
    break;
case 'hs':
    $t0 = hrtime(true) / 1e9; $c0 = cpu_seconds();
    for ($i = 0; $i < $n; $i++) {
        $s = tls_connect();
        if (fread($s, 1) !== 'A') fail('no byte');
        fclose($s);
    }
    $wall = hrtime(true) / 1e9 - $t0; $cpu = cpu_seconds() - $c0;
    out(['value' => $n / $wall, 'unit' => 'hs/s', 'wall_s' => $wall, 'cpu_s' => $cpu, 'cpu_per' => $cpu / $n * 1e6, 'cpu_unit' => 'us/hs']);
    break;
case 'idle':
    $s = tls_connect(); fread($s, 1); fclose($s);
    gc_collect_cycles();
    $before = status_kib('VmRSS:');
    $held = [];
    for ($i = 0; $i < $n; $i++) {
        $s = tls_connect();
        fread($s, 1);
        $held[] = $s;
    }
    $after = status_kib('VmRSS:'); $peak = status_kib('VmHWM:');
    out(['value' => ($after - $before) / $n, 'unit' => 'KiB/conn', 'rss_before_kib' => $before,
         'rss_after_kib' => $after, 'peak_kib' => $peak]);
    foreach ($held as $s) fclose($s);
    break;
case 'resume':
    fwrite(STDERR, "PHP streams do not resume TLS sessions on the client (no session cache for stream_socket_client)\n");
    exit(3);
default:
    fwrite(STDERR, "workload $workload not supported by the PHP peer\n");
    exit(3);
}
