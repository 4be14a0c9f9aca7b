//! What `/proc` says about a server process: its CPU time, its memory, its open file descriptors, and the TCP
//! sockets it holds (to show that it listens on and talks to loopback only).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::Context as _;

/// (VmRSS, VmHWM) in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Ok((
        field("VmRSS:").context("VmRSS")?,
        field("VmHWM:").context("VmHWM")?,
    ))
}

/// How many file descriptors the process holds open (the entries of `/proc/<pid>/fd`).
pub fn open_fds(pid: u32) -> anyhow::Result<u64> {
    let entries =
        std::fs::read_dir(format!("/proc/{pid}/fd")).with_context(|| format!("/proc/{pid}/fd"))?;
    Ok(entries.count() as u64)
}

/// The process's user + system CPU time so far, all threads, in clock ticks.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat).with_context(|| format!("/proc/{pid}/stat: {stat}"))
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its last `)`.
    // utime and stime are fields 14 and 15, so the 12th and 13th after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux this runs on).
pub fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// One TCP socket of a process.
#[derive(Debug, PartialEq, Eq)]
pub struct Socket {
    /// Its local address.
    pub local: SocketAddr,
    /// Its peer (unspecified while listening).
    pub remote: SocketAddr,
    /// Whether it is a listening socket.
    pub listening: bool,
}

impl Socket {
    /// Whether it stays on this machine's loopback: a listener bound to loopback (not to every interface), or
    /// a connection whose both ends are loopback.
    pub fn is_loopback(&self) -> bool {
        let lo = |a: &SocketAddr| match a.ip() {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        };
        lo(&self.local) && (self.listening || lo(&self.remote))
    }
}

/// The TCP sockets (IPv4 and IPv6) that `pid` holds open.
pub fn tcp_sockets(pid: u32) -> anyhow::Result<Vec<Socket>> {
    let mut inodes = HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let link = std::fs::read_link(fd?.path()).unwrap_or_default();
        let link = link.to_string_lossy();
        if let Some(inode) = link
            .strip_prefix("socket:[")
            .and_then(|l| l.strip_suffix(']'))
        {
            inodes.insert(inode.to_owned());
        }
    }
    let mut sockets = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}"))?;
        sockets.extend(parse_tcp_table(&text, &inodes));
    }
    Ok(sockets)
}

/// The rows of a `/proc/net/tcp` or `tcp6` table whose inode is in `inodes`; unreadable rows are skipped.
fn parse_tcp_table(text: &str, inodes: &HashSet<String>) -> Vec<Socket> {
    text.lines()
        .skip(1)
        .filter_map(|row| {
            let f: Vec<&str> = row.split_whitespace().collect();
            if !inodes.contains(*f.get(9)?) {
                return None;
            }
            Some(Socket {
                local: parse_address(f.get(1)?)?,
                remote: parse_address(f.get(2)?)?,
                listening: *f.get(3)? == "0A",
            })
        })
        .collect()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits (IPv6), each 32-bit word in host (little-endian) order.
fn parse_address(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_le_bytes(),
        )
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime_even_with_spaces_in_the_name() {
        let stat =
            "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 56 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(1290));
        assert_eq!(parse_cpu_ticks("4242 (x) S 1 2"), None);
        assert_eq!(parse_cpu_ticks("no parenthesis"), None);
    }

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0
   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0 100 0 0 10 0
   2: 0100007F:9C40 0100007F:1A0B 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0
   3: 0100007F:9C41 0A00000A:01BB 01 00000000:00000000 00:00000000 00000000     0        0 444 1 0 100 0 0 10 0
   4: garbage
";
    const TCP6: &str =
        "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1 0 20 4 -1
   1: 0000000000000000FFFF00000100007F:1F91 0000000000000000FFFF00000100007F:1A0B 01 00000000:00000000 00:00000000 00000000     0        0 666 1 0 20 4 -1
   2: 00000000000000000000000000000000:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0 20 4 -1
";

    fn held(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn loopback_listeners_and_connections_are_told_from_the_rest() {
        let sockets = parse_tcp_table(TCP, &held(&["111", "222", "333", "444", "999"]));
        let seen: Vec<(String, bool)> = sockets
            .iter()
            .map(|s| {
                (
                    format!("{} {} {}", s.local, s.remote, s.listening),
                    s.is_loopback(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("127.0.0.1:8080 0.0.0.0:0 true".to_string(), true),
                ("0.0.0.0:80 0.0.0.0:0 true".to_string(), false),
                ("127.0.0.1:40000 127.0.0.1:6667 false".to_string(), true),
                ("127.0.0.1:40001 10.0.0.10:443 false".to_string(), false),
            ]
        );
    }

    #[test]
    fn ipv6_loopback_and_mapped_loopback_count_as_loopback_but_not_the_wildcard() {
        let sockets = parse_tcp_table(TCP6, &held(&["555", "666", "777"]));
        let seen: Vec<(String, bool)> = sockets
            .iter()
            .map(|s| (s.local.to_string(), s.is_loopback()))
            .collect();
        assert_eq!(
            seen,
            [
                ("[::1]:8080".to_string(), true),
                ("[::ffff:127.0.0.1]:8081".to_string(), true),
                ("[::]:8082".to_string(), false),
            ]
        );
    }

    #[test]
    fn sockets_of_other_processes_are_not_listed() {
        assert!(parse_tcp_table(TCP, &held(&["999"])).is_empty());
    }
}
