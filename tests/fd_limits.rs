//! File descriptors: no leak on any failure path, and running out of them
//! (EMFILE) is TU_E_IO naming EMFILE, with recovery once some are closed.
//!
//! One test in its own binary (its own process): it counts /proc/self/fd
//! and lowers RLIMIT_NOFILE, which other tests running alongside would
//! disturb.

mod conn_support;

use conn_support::*;
use std::io::Write;
use std::time::Duration;
use transporturl::error::*;
use transporturl::net::{self, Deadline, Kind, SocketOptions};
use transporturl::{Handle, Options};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn options(pairs: &[(&str, &str)]) -> Options {
    let mut o = Options::default();
    o.set("ssl.cafile", pki().ca_path.to_str().unwrap()).unwrap();
    o.set("timeout", "5").unwrap();
    for (k, v) in pairs {
        o.set(k, v).unwrap();
    }
    o
}

#[track_caller]
fn fails(url: &str, pairs: &[(&str, &str)], code: i32, word: &str) {
    match Handle::connect(url, &options(pairs)) {
        Ok(_) => panic!("{url}: connected"),
        Err(e) => {
            assert_eq!(e.code, code, "{url}: {e}");
            assert!(e.message.contains(word), "{url}: {e}");
        }
    }
}

#[test]
fn no_descriptor_leaks_and_emfile_recovery() {
    // Every peer first, so that the count covers only the library's work.
    // A plaintext greeter whose listener lives until `done` says so.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_port = listener.local_addr().unwrap().port();
    let (done, finish) = std::sync::mpsc::channel::<()>();
    let plain_server = std::thread::spawn(move || {
        for _ in 0..3 {
            let Ok((mut s, _)) = listener.accept() else { return };
            let _ = s.write_all(b"220 smtp.example ESMTP ready\r\n");
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = finish.recv_timeout(IO_LIMIT);
    });
    let refused = closed_port("127.0.0.1");
    let hole = blackhole();
    let good = std::net::TcpListener::bind("[::1]:0").unwrap();
    let good_port = good.local_addr().unwrap().port();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let busy_udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let busy_udp_port = busy_udp.local_addr().unwrap().port();
    let dir = temp_dir("fds");
    let baseline = open_fds();

    for _ in 0..10 {
        fails(&format!("tcp://127.0.0.1:{refused}"), &[], TU_E_REFUSED, "ECONNREFUSED");
        fails(&format!("udp://127.0.0.1:{refused}"), &[("socket.bindto", &format!("127.0.0.1:{busy_udp_port}"))], TU_E_IO, "EADDRINUSE");
        fails(&format!("tcp://127.0.0.1:{refused}"), &[("socket.bindto", &format!("127.0.0.1:{busy_port}"))], TU_E_IO, "EADDRINUSE");
        fails(&format!("tcp://[::1]:{refused}"), &[("socket.bindto", "127.0.0.1:0")], TU_E_INVALID_ARGUMENT, "bindto");
        fails(&format!("unix://{}", dir.join("missing").display()), &[], TU_E_IO, "ENOENT");
        fails(&format!("udg://{}", dir.join("missing").display()), &[], TU_E_IO, "ENOENT");
        fails("tcp://no-such-host.invalid:80", &[], TU_E_RESOLVE, "no-such-host.invalid");
        fails("tcp://127.0.0.1:99999", &[], TU_E_URL, "out of range");
    }
    fails(&format!("tcp://127.0.0.1:{}", hole.port), &[("timeout", "0.2")], TU_E_TIMEOUT, "timed out");
    // A TLS handshake that meets a plaintext greeting.
    for _ in 0..3 {
        fails(&format!("tls://localhost:{plain_port}"), &[], TU_E_PLAINTEXT_PEER, "220");
    }
    // Happy Eyeballs: the losing attempt is closed with the winner's return.
    let addrs = [format!("127.0.0.1:{}", hole.port).parse().unwrap(), format!("[::1]:{good_port}").parse().unwrap()];
    for _ in 0..3 {
        let sock = net::connect_addrs(&addrs, Kind::Stream, &SocketOptions::default(), &Deadline::after(Some(Duration::from_secs(5))), "x")
            .unwrap();
        drop(sock);
    }
    std::thread::sleep(Duration::from_millis(300)); // the greeter closes its last connection
    assert_eq!(open_fds(), baseline, "descriptors leaked on failure paths");
    done.send(()).unwrap();
    plain_server.join().unwrap();

    // EMFILE: the limit just above what is open, then use up the rest.
    let opts = options(&[]);
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY (test): reads this process's limit into a valid struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    let saved = limit;
    limit.rlim_cur = (open_fds() + 16) as libc::rlim_t;
    // SAFETY (test): lowers the soft limit only; restored below.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let mut hog = Vec::new();
    for _ in 0..64 {
        match std::fs::File::open("/dev/null") {
            Ok(f) => hog.push(f),
            Err(_) => break,
        }
    }
    assert!(hog.len() < 64, "the descriptor limit did not apply");
    let url = format!("tcp://[::1]:{good_port}");
    let e = Handle::connect(&url, &opts).err().expect("connected without a free descriptor");
    assert_eq!(e.code, TU_E_IO, "{e}");
    assert!(e.message.contains("EMFILE"), "{e}");
    hog.truncate(hog.len() - 4);
    let h = Handle::connect(&url, &opts).unwrap_or_else(|e| panic!("no recovery after closing some: {e}"));
    drop(h);
    drop(hog);
    // SAFETY (test): restores the saved limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &saved) }, 0);
    drop(good);
    drop(busy);
    drop(busy_udp);
}
