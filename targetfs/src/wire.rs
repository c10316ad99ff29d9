//! The file agent's protocol: [`TargetFs`] calls as frames over one byte
//! stream (an exec session's stdin and stdout).
//!
//! Every frame is a little-endian `u32` length, then that many bytes. The
//! agent speaks first: one frame holding [`HELLO`]. Then each request frame
//! (`op: u8`, `limit: u64`, the path's bytes) gets exactly one response
//! frame, in order, so a client may send several requests before reading
//! (pipelining). A `BYE` request (op 6) ends the agent at once: an exec
//! session's stdin cannot always be closed from the client's side. A
//! response is a status byte and its payload:
//!
//! | status | payload |
//! |---|---|
//! | `OK` | stat: kind u8, mode u32, uid u32, gid u32, size u64, mtime i64; read / read-link: the bytes; read-dir: names, each `u32` length + bytes |
//! | `IO` | errno `i32` |
//! | `TOO_LARGE` | the limit `u64` |
//! | `NOT_REGULAR` | the kind `u8` |
//! | `TOO_MANY` | the cap `u64` (a directory with more names than the agent lists) |
//!
//! Paths and names travel as bytes; the client decodes them as
//! [`RootDir`](crate::RootDir) does (lossily), so a remote root reads
//! exactly like a local one.

use std::io::{self, Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{FileKind, FsError, Stat, TargetFs};

/// The agent's greeting; a client refuses any other.
pub const HELLO: &[u8] = b"dscan-agent 1";

/// The largest frame either side accepts: a read's cap plus headroom.
pub const MAX_FRAME: usize = 64 << 20;

/// The most names one read-dir answer lists.
pub const MAX_NAMES: u64 = 1 << 20;

const OP_STAT: u8 = 1;
const OP_LSTAT: u8 = 2;
const OP_READ: u8 = 3;
const OP_READ_DIR: u8 = 4;
const OP_READ_LINK: u8 = 5;
const OP_BYE: u8 = 6;

const OK: u8 = 0;
const IO: u8 = 1;
const TOO_LARGE: u8 = 2;
const NOT_REGULAR: u8 = 3;
const TOO_MANY: u8 = 4;

/// Writes one frame.
pub fn write_frame(out: &mut impl Write, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(body)
}

/// Reads one frame; `None` at a clean end of stream.
pub fn read_frame(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a {len}-byte frame is over the {MAX_FRAME}-byte cap"),
        ));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body)?;
    Ok(Some(body))
}

fn kind_code(k: FileKind) -> u8 {
    match k {
        FileKind::File => 1,
        FileKind::Directory => 2,
        FileKind::Symlink => 3,
        FileKind::CharDevice => 4,
        FileKind::BlockDevice => 5,
        FileKind::Pipe => 6,
        FileKind::Socket => 7,
        FileKind::Unknown => 0,
    }
}

fn kind_of(c: u8) -> FileKind {
    match c {
        1 => FileKind::File,
        2 => FileKind::Directory,
        3 => FileKind::Symlink,
        4 => FileKind::CharDevice,
        5 => FileKind::BlockDevice,
        6 => FileKind::Pipe,
        7 => FileKind::Socket,
        _ => FileKind::Unknown,
    }
}

fn errno(e: &io::Error) -> i32 {
    // An error without an OS code (none of RootDir's) reads as EIO.
    e.raw_os_error().unwrap_or(5)
}

/// Answers one request against `fs` (the agent's side).
pub fn answer(fs: &crate::RootDir, request: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let (Some(&op), Some(limit)) = (request.first(), request.get(1..9)) else {
        out.push(IO);
        out.extend_from_slice(&22i32.to_le_bytes()); // EINVAL
        return out;
    };
    let mut limit_bytes = [0u8; 8];
    limit_bytes.copy_from_slice(limit);
    let limit = u64::from_le_bytes(limit_bytes);
    let path = String::from_utf8_lossy(&request[9..]);
    let io_error = |out: &mut Vec<u8>, e: &io::Error| {
        out.push(IO);
        out.extend_from_slice(&errno(e).to_le_bytes());
    };
    match op {
        OP_STAT | OP_LSTAT => {
            let st = if op == OP_STAT {
                fs.stat(&path)
            } else {
                fs.lstat(&path)
            };
            match st {
                Ok(st) => {
                    out.push(OK);
                    out.push(kind_code(st.kind));
                    out.extend_from_slice(&st.mode.to_le_bytes());
                    out.extend_from_slice(&st.uid.to_le_bytes());
                    out.extend_from_slice(&st.gid.to_le_bytes());
                    out.extend_from_slice(&st.size.to_le_bytes());
                    out.extend_from_slice(&st.mtime.to_le_bytes());
                }
                Err(e) => io_error(&mut out, &e),
            }
        }
        OP_READ => match fs.read(&path, limit.min((MAX_FRAME - 16) as u64)) {
            Ok(bytes) => {
                out.push(OK);
                out.extend_from_slice(&bytes);
            }
            Err(FsError::Io { source, .. }) => io_error(&mut out, &source),
            Err(FsError::TooLarge { limit, .. }) => {
                out.push(TOO_LARGE);
                out.extend_from_slice(&limit.to_le_bytes());
            }
            Err(FsError::NotRegular { .. }) => {
                out.push(NOT_REGULAR);
                out.push(fs.stat(&path).map(|s| kind_code(s.kind)).unwrap_or(0));
            }
        },
        OP_READ_DIR => match fs.read_dir_raw(&path, MAX_NAMES) {
            Ok(Some(names)) => {
                out.push(OK);
                for n in names {
                    out.extend_from_slice(&(n.len() as u32).to_le_bytes());
                    out.extend_from_slice(&n);
                }
            }
            Ok(None) => {
                out.push(TOO_MANY);
                out.extend_from_slice(&MAX_NAMES.to_le_bytes());
            }
            Err(e) => io_error(&mut out, &e),
        },
        OP_READ_LINK => match fs.read_link_raw(&path) {
            Ok(t) => {
                out.push(OK);
                out.extend_from_slice(&t);
            }
            Err(e) => io_error(&mut out, &e),
        },
        _ => {
            out.push(IO);
            out.extend_from_slice(&95i32.to_le_bytes()); // EOPNOTSUPP
        }
    }
    if out.len() > MAX_FRAME {
        // Only a huge directory listing can get here: refuse it whole.
        out.clear();
        out.push(TOO_MANY);
        out.extend_from_slice(&MAX_NAMES.to_le_bytes());
    }
    out
}

/// The agent's loop: greet, then answer every request until the stream
/// ends.
pub fn serve(
    fs: &crate::RootDir,
    input: &mut impl Read,
    output: &mut impl Write,
) -> io::Result<()> {
    write_frame(output, HELLO)?;
    output.flush()?;
    while let Some(request) = read_frame(input)? {
        if request.first() == Some(&OP_BYE) {
            break;
        }
        write_frame(output, &answer(fs, &request))?;
        output.flush()?;
    }
    Ok(())
}

/// A [`TargetFs`] served by an agent at the other end of a byte stream.
/// Calls are serialised on one stream (the engine makes them one at a
/// time), so it is `Sync` whenever the stream halves are `Send`.
pub struct RemoteFs<R, W> {
    io: Mutex<(R, W)>,
    requests: AtomicU64,
    round_trips: AtomicU64,
    reader: Option<String>,
    /// Answers fetched ahead ([`TargetFs::prefetch`]), by op and path.
    cache: Mutex<std::collections::HashMap<Question, Answer>>,
}

/// A question to the agent: the op and the path.
type Question = (u8, String);
/// The agent's answer: the status and the payload.
type Answer = (u8, Vec<u8>);

/// Reads fetched ahead are capped here; a larger file is read on demand.
const PREFETCH_READ: u64 = 1 << 20;

/// At most this many paths are fetched ahead.
const PREFETCH_PATHS: usize = 4096;

fn protocol_error(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl<R: Read, W: Write> RemoteFs<R, W> {
    /// Connects: reads and checks the agent's greeting.
    pub fn connect(mut input: R, output: W) -> io::Result<RemoteFs<R, W>> {
        match read_frame(&mut input)? {
            Some(h) if h == HELLO => Ok(RemoteFs {
                io: Mutex::new((input, output)),
                requests: AtomicU64::new(0),
                round_trips: AtomicU64::new(0),
                reader: None,
                cache: Mutex::new(std::collections::HashMap::new()),
            }),
            Some(h) => Err(protocol_error(format!(
                "the file agent greeted with {:?}, not {:?}",
                String::from_utf8_lossy(&h),
                String::from_utf8_lossy(HELLO)
            ))),
            None => Err(protocol_error("the file agent ended before greeting")),
        }
    }

    /// Names who the agent reads as (`uid 65532`): a permission error then
    /// says the target's own permissions forbade the read.
    pub fn reading_as(mut self, reader: impl Into<String>) -> Self {
        self.reader = Some(reader.into());
        self
    }

    fn error(&self, status: u8, payload: &[u8]) -> io::Error {
        let e = status_error(status, payload);
        match (&self.reader, e.kind()) {
            (Some(who), io::ErrorKind::PermissionDenied) => io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("not readable as {who} (the target's own permissions)"),
            ),
            _ => e,
        }
    }

    /// Ends the agent (it answers nothing more).
    pub fn bye(&self) -> io::Result<()> {
        let mut io = self.io.lock().unwrap_or_else(|p| p.into_inner());
        let mut req = vec![OP_BYE];
        req.extend_from_slice(&0u64.to_le_bytes());
        write_frame(&mut io.1, &req)?;
        io.1.flush()
    }

    /// Requests the agent answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Round trips so far: a pipelined batch counts once.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Sends every request, then reads every answer: one round trip.
    fn batch(&self, requests: &[(u8, &str, u64)]) -> io::Result<Vec<(u8, Vec<u8>)>> {
        let mut io = self.io.lock().unwrap_or_else(|p| p.into_inner());
        for (op, path, limit) in requests {
            let mut req = Vec::with_capacity(9 + path.len());
            req.push(*op);
            req.extend_from_slice(&limit.to_le_bytes());
            req.extend_from_slice(path.as_bytes());
            write_frame(&mut io.1, &req)?;
        }
        io.1.flush()?;
        let mut out = Vec::with_capacity(requests.len());
        for _ in requests {
            let resp = read_frame(&mut io.0)?
                .ok_or_else(|| protocol_error("the file agent ended mid-conversation"))?;
            let (&status, payload) = resp
                .split_first()
                .ok_or_else(|| protocol_error("an empty answer from the file agent"))?;
            out.push((status, payload.to_vec()));
        }
        self.requests
            .fetch_add(requests.len() as u64, Ordering::Relaxed);
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        Ok(out)
    }

    fn call(&self, op: u8, path: &str, limit: u64) -> io::Result<(u8, Vec<u8>)> {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(op, path.to_string()))
            .cloned();
        match cached {
            // A prefetched read serves any limit it fits in.
            Some((OK, bytes)) if op == OP_READ && bytes.len() as u64 <= limit => {
                return Ok((OK, bytes));
            }
            Some(answer) if op != OP_READ => return Ok(answer),
            _ => {}
        }
        let answer = self
            .batch(&[(op, path, limit)])?
            .pop()
            .ok_or_else(|| protocol_error("no answer from the file agent"))?;
        // Every answer is kept: a scan sees the target as it first found it,
        // and asks each question of the agent once.
        if op != OP_READ || answer.0 == OK {
            self.cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((op, path.to_string()), answer.clone());
        }
        Ok(answer)
    }

    fn stat_call(&self, op: u8, path: &str) -> io::Result<Stat> {
        let (status, p) = self.call(op, path, 0)?;
        decode_stat(status, &p).ok_or_else(|| self.error(status, &p))
    }
}

/// A stat answer's metadata (`None` for any other answer).
fn decode_stat(status: u8, p: &[u8]) -> Option<Stat> {
    if status != OK || p.len() != 29 {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&p[i..i + 8]);
        u64::from_le_bytes(b)
    };
    Some(Stat {
        kind: kind_of(p[0]),
        mode: u32_at(1),
        uid: u32_at(5),
        gid: u32_at(9),
        size: u64_at(13),
        mtime: u64_at(21) as i64,
    })
}

fn status_error(status: u8, p: &[u8]) -> io::Error {
    match (status, p.get(0..4)) {
        (IO, Some(b)) => io::Error::from_raw_os_error(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        _ => protocol_error(format!("unexpected answer {status} from the file agent")),
    }
}

impl<R: Read, W: Write> TargetFs for RemoteFs<R, W> {
    fn fetches_ahead(&self) -> bool {
        true
    }

    /// Pipelined batches, a few round trips in all: the metadata of every
    /// path and of its parent directories; then the content of the regular
    /// files among them up to 1 MiB and the targets of the symlinks; then
    /// the same for the paths those links lead to (a few rounds). Answers
    /// are served from then on as the target was at that moment.
    fn prefetch(&self, paths: &[String]) {
        let mut known: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut next: Vec<String> = Vec::new();
        let add =
            |p: &str, next: &mut Vec<String>, known: &mut std::collections::HashSet<String>| {
                // The path and every ancestor: resolving a path looks at each.
                let mut cur = crate::clean(p);
                loop {
                    if known.len() >= PREFETCH_PATHS {
                        return;
                    }
                    if known.insert(cur.clone()) {
                        next.push(cur.clone());
                    }
                    match cur.rfind('/') {
                        Some(0) | None => break,
                        Some(i) => cur.truncate(i),
                    }
                }
            };
        for p in paths {
            add(p, &mut next, &mut known);
        }
        for _round in 0..4 {
            if next.is_empty() {
                return;
            }
            let round: Vec<String> = std::mem::take(&mut next);
            let mut metadata = Vec::with_capacity(round.len() * 2);
            for p in &round {
                metadata.push((OP_LSTAT, p.as_str(), 0));
                metadata.push((OP_STAT, p.as_str(), 0));
            }
            let Ok(answers) = self.batch(&metadata) else {
                return;
            };
            let mut follow = Vec::new();
            {
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                for ((op, path, _), answer) in metadata.iter().zip(answers) {
                    match (*op, decode_stat(answer.0, &answer.1)) {
                        (OP_LSTAT, Some(st)) if st.kind == FileKind::Symlink => {
                            follow.push((OP_READ_LINK, *path, 0))
                        }
                        (OP_STAT, Some(st))
                            if st.kind == FileKind::File && st.size <= PREFETCH_READ =>
                        {
                            follow.push((OP_READ, *path, PREFETCH_READ))
                        }
                        _ => {}
                    }
                    cache.insert((*op, path.to_string()), answer);
                }
            }
            if follow.is_empty() {
                continue;
            }
            let Ok(answers) = self.batch(&follow) else {
                return;
            };
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            for ((op, path, _), answer) in follow.iter().zip(answers) {
                if *op == OP_READ_LINK && answer.0 == OK {
                    // Where the link leads, as the target resolves it.
                    let target = String::from_utf8_lossy(&answer.1).into_owned();
                    let joined = if target.starts_with('/') {
                        target
                    } else {
                        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                        format!("{dir}/{target}")
                    };
                    add(&joined, &mut next, &mut known);
                }
                if *op != OP_READ || answer.0 == OK {
                    cache.insert((*op, path.to_string()), answer);
                }
            }
        }
    }

    fn stat(&self, path: &str) -> io::Result<Stat> {
        self.stat_call(OP_STAT, path)
    }

    fn lstat(&self, path: &str) -> io::Result<Stat> {
        self.stat_call(OP_LSTAT, path)
    }

    fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
        let io_err = |source| FsError::Io {
            path: path.to_string(),
            source,
        };
        let (status, p) = self.call(OP_READ, path, limit).map_err(io_err)?;
        match status {
            OK => Ok(p),
            TOO_LARGE => Err(FsError::TooLarge {
                path: path.to_string(),
                limit,
            }),
            NOT_REGULAR => Err(FsError::NotRegular {
                path: path.to_string(),
                kind: kind_of(p.first().copied().unwrap_or(0)).inspec_name(),
            }),
            _ => Err(io_err(self.error(status, &p))),
        }
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let (status, p) = self.call(OP_READ_DIR, path, 0)?;
        match status {
            OK => {
                let mut names = Vec::new();
                let mut rest = p.as_slice();
                while rest.len() >= 4 {
                    let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                    let name = rest
                        .get(4..4 + n)
                        .ok_or_else(|| protocol_error("a truncated name list"))?;
                    names.push(String::from_utf8_lossy(name).into_owned());
                    rest = &rest[4 + n..];
                }
                Ok(names)
            }
            TOO_MANY => Err(io::Error::other(format!(
                "{path} holds more than {MAX_NAMES} names; dscan does not list it"
            ))),
            _ => Err(self.error(status, &p)),
        }
    }

    fn read_link(&self, path: &str) -> io::Result<String> {
        let (status, p) = self.call(OP_READ_LINK, path, 0)?;
        match status {
            OK => Ok(String::from_utf8_lossy(&p).into_owned()),
            _ => Err(self.error(status, &p)),
        }
    }
}
