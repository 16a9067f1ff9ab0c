//! The text log's timestamp and fields, written without `core::fmt`'s machinery where the
//! output is plain, and byte for byte what tracing-subscriber's defaults write.
//!
//! A busy webhook writes one "call decided" line per call. Profiled, formatting that line's
//! timestamp (through `write!` with widths, per field) and its string fields (through `str`'s
//! `Debug`, which checks every character for escaping) was a visible share of the call. Here:
//!
//! * [`LogTime`] formats the date and time of the second once per thread and second, and the
//!   microseconds by hand (`2026-12-07T21:20:45.901181Z`, as `fmt::time::SystemTime`);
//! * [`LogFields`] writes a string field whose characters need no escaping as `name="value"`
//!   directly, and any other field other than the message as `name=` and its `Debug`; the
//!   message, and every field when the writer colours its output, go to tracing-subscriber's
//!   own `DefaultVisitor`, so the output never differs;
//! * [`LogLine`] writes the line around them (time, level, target) with plain string writes
//!   when the event is outside any span and uncoloured, as the webhooks' events are; others go
//!   to tracing-subscriber's `Full` format.

use std::cell::Cell;
use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, Format, Full, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, in UTC: the length of a timestamp.
const STAMP_LEN: usize = 27;

/// The log's timestamp (UTC, microseconds), as tracing-subscriber's `SystemTime` writes it.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogTime;

thread_local! {
    /// The last second formatted on this thread, and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
}

impl FormatTime for LogTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let now = std::time::SystemTime::now();
        match now.duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => {
                let mut stamp = [0u8; STAMP_LEN];
                if write_stamp(since.as_secs(), since.subsec_micros(), &mut stamp) {
                    if let Ok(text) = std::str::from_utf8(&stamp) {
                        return w.write_str(text);
                    }
                }
                tracing_subscriber::fmt::time::SystemTime.format_time(w)
            }
            // A clock before 1970: leave it to the library.
            Err(_) => tracing_subscriber::fmt::time::SystemTime.format_time(w),
        }
    }
}

/// Write the timestamp of `secs` since the epoch and `micros` into `out`; `false` for a year
/// outside 0000–9999 (the caller then formats it the slow way).
fn write_stamp(secs: u64, micros: u32, out: &mut [u8; STAMP_LEN]) -> bool {
    let cached = SECOND.with(|cell| {
        let (second, text) = cell.get();
        if second == secs {
            return Some(text);
        }
        let text = second_text(secs)?;
        cell.set((secs, text));
        Some(text)
    });
    let Some(text) = cached else {
        return false;
    };
    out[..19].copy_from_slice(&text);
    out[19] = b'.';
    let mut rest = micros.min(999_999);
    for slot in out[20..26].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out[26] = b'Z';
    true
}

/// `YYYY-MM-DDTHH:MM:SS` for a second since the epoch (years 0000–9999 only).
fn second_text(secs: u64) -> Option<[u8; 19]> {
    use chrono::{Datelike, Timelike};
    let at = chrono::DateTime::from_timestamp(i64::try_from(secs).ok()?, 0)?;
    let year = u32::try_from(at.year()).ok().filter(|y| *y <= 9999)?;
    let mut text = [0u8; 19];
    let mut put = |range: std::ops::Range<usize>, mut value: u32| {
        for slot in text[range].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0..4, year);
    put(5..7, at.month());
    put(8..10, at.day());
    put(11..13, at.hour());
    put(14..16, at.minute());
    put(17..19, at.second());
    for (i, sep) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
        text[i] = sep;
    }
    Some(text)
}

/// The text log's line format: tracing-subscriber's default (`Full`) format with the timer
/// `T` ([`LogTime`] in production), byte for byte (see the module's notes).
#[derive(Debug)]
pub struct LogLine<T = LogTime> {
    timer: T,
    full: Format<Full, T>,
}

impl<T: FormatTime + Clone> LogLine<T> {
    pub fn with_timer(timer: T) -> Self {
        LogLine {
            full: tracing_subscriber::fmt::format().with_timer(timer.clone()),
            timer,
        }
    }
}

impl Default for LogLine {
    fn default() -> Self {
        LogLine::with_timer(LogTime)
    }
}

/// The level as the `Full` format writes it uncoloured (five characters).
fn level_text(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

impl<S, N, T> FormatEvent<S, N> for LogLine<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        // Colours, span context and records bridged from `log` (whose metadata the `Full`
        // format replaces) take the library's way.
        if writer.has_ansi_escapes() || meta.target() == "log" || ctx.event_scope().is_some() {
            return self.full.format_event(ctx, writer, event);
        }
        if self.timer.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_char(' ')?;
        writer.write_str(level_text(meta.level()))?;
        writer.write_char(' ')?;
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// The text log's field formatter (see the module's notes).
#[derive(Clone, Copy, Debug, Default)]
pub struct LogFields;

impl<'a> MakeVisitor<Writer<'a>> for LogFields {
    type Visitor = FieldsVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        FieldsVisitor {
            plain: !target.has_ansi_escapes(),
            writer: target,
            is_empty: true,
            result: Ok(()),
        }
    }
}

/// Writes one event's or span's fields (see [`LogFields`]).
pub struct FieldsVisitor<'a> {
    writer: Writer<'a>,
    /// No colours: plain strings may take the direct path.
    plain: bool,
    is_empty: bool,
    result: fmt::Result,
}

impl FieldsVisitor<'_> {
    /// Hand one field to tracing-subscriber's visitor, in this line's place.
    fn delegate(&mut self, field: &Field, record: impl FnOnce(&mut DefaultVisitor<'_>, &Field)) {
        if self.result.is_err() {
            return;
        }
        let mut inner = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut inner, field);
        self.result = inner.finish();
        // The default visitor writes nothing for the `log.` fields of a bridged log record.
        if !field.name().starts_with("log.") {
            self.is_empty = false;
        }
    }
}

impl FieldsVisitor<'_> {
    /// Whether this field may be written here rather than by the default visitor: no colours,
    /// and not the message, a raw identifier or a bridged `log.` field (each written its own way).
    fn direct(&self, field: &Field) -> bool {
        let name = field.name();
        self.plain && name != "message" && !name.starts_with("r#") && !name.starts_with("log.")
    }

    /// Write ` name` (the space only between fields), then the rest with `value`.
    fn write_field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        if !self.is_empty {
            self.result = self.writer.write_char(' ');
        }
        self.is_empty = false;
        if self.result.is_ok() {
            self.result = self
                .writer
                .write_str(field.name())
                .and_then(|()| value(&mut self.writer));
        }
    }
}

/// Whether `str`'s `Debug` writes `value` unchanged between its quotes.
fn needs_no_escaping(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' && b != b'\'')
}

impl Visit for FieldsVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.direct(field) || !needs_no_escaping(value) {
            return self.delegate(field, |v, f| v.record_str(f, value));
        }
        self.write_field(field, |w| {
            w.write_str("=\"")
                .and_then(|()| w.write_str(value))
                .and_then(|()| w.write_char('"'))
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.direct(field) {
            return self.delegate(field, |v, f| v.record_debug(f, value));
        }
        self.write_field(field, |w| {
            w.write_char('=').and_then(|()| write!(w, "{value:?}"))
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.delegate(field, |v, f| v.record_i64(f, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.delegate(field, |v, f| v.record_u64(f, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.delegate(field, |v, f| v.record_bool(f, value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.delegate(field, |v, f| v.record_error(f, value));
    }
}

impl VisitOutput<fmt::Result> for FieldsVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for FieldsVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn timestamps_match_rfc3339_with_microseconds_across_the_calendar() {
        let mut secs: Vec<u64> = vec![
            0,
            59,
            951_782_400,     // 2000-02-29
            1_709_164_799,   // 2024-02-28T23:59:59
            1_709_164_800,   // 2024-02-29
            1_798_761_599,   // 2026-12-31T23:59:59
            4_102_444_800,   // 2100-01-01 (not a leap year)
            253_402_300_799, // 9999-12-31T23:59:59
        ];
        // A spread of seconds in between, each through the thread's cache and afresh.
        secs.extend((0..2_000u64).map(|i| i * 126_227_311 % 253_402_300_800));
        for (i, s) in secs.iter().enumerate() {
            let micros = (i as u32).wrapping_mul(7_919) % 1_000_000;
            let mut out = [0u8; STAMP_LEN];
            assert!(write_stamp(*s, micros, &mut out), "{s}");
            let expected = chrono::DateTime::from_timestamp(*s as i64, micros * 1_000)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string();
            assert_eq!(std::str::from_utf8(&out).unwrap(), expected, "{s}");
            // Again within the same second: the cached date and time, new microseconds.
            assert!(write_stamp(*s, 999_999 - micros, &mut out));
            assert_eq!(&out[..20], &expected.as_bytes()[..20]);
            assert_eq!(&out[20..26], format!("{:06}", 999_999 - micros).as_bytes());
        }
        assert!(
            !write_stamp(253_402_300_800, 0, &mut [0u8; STAMP_LEN]),
            "year 10000"
        );
    }

    /// A `MakeWriter` over a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// The same events through the default formatter and through [`LogFields`].
    fn both(ansi: bool, emit: fn()) -> (String, String) {
        let run = |fast: bool| {
            let buffer = Buffer::default();
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(ansi)
                .without_time()
                .with_writer(buffer.clone());
            if fast {
                let subscriber = tracing_subscriber::registry().with(layer.fmt_fields(LogFields));
                tracing::subscriber::with_default(subscriber, emit);
            } else {
                let subscriber = tracing_subscriber::registry().with(layer);
                tracing::subscriber::with_default(subscriber, emit);
            }
            let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
            text
        };
        (run(false), run(true))
    }

    use tracing_subscriber::layer::SubscriberExt;

    fn events() {
        let sid = "CA0123456789abcdef0123456789abcdef";
        let span = tracing::info_span!("request", method = "POST", uri = "/webhooks/twilio/voice");
        let _entered = span.enter();
        tracing::info!(
            provider = "twilio",
            call_id = %sid,
            outcome = "continue",
            reason = "no_arrangement",
            source = "cache",
            arrangement_id = Option::<&str>::None,
            "call decided"
        );
        tracing::warn!(
            quoted = "say \"hello\"",
            backslash = r"a\b",
            apostrophe = "it's",
            tab = "a\tb",
            newline = "a\nb",
            escape = "\u{1b}[31mred",
            accent = "Gwasanaeth ar gau — ffoniwch eto",
            empty = "",
            r#type = "raw",
            count = 3u64,
            delta = -4i64,
            flag = true,
            "{} mixed fields",
            "formatted"
        );
        let err = std::io::Error::other("disk full");
        tracing::error!(
            error = &err as &(dyn std::error::Error + 'static),
            text = "x",
            "failed"
        );
        tracing::info!(only = "one");
    }

    /// A timer that always writes the same instant, so that whole lines can be compared.
    #[derive(Clone, Copy, Debug)]
    struct FixedTime;

    impl FormatTime for FixedTime {
        fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
            w.write_str("2026-12-08T02:30:00.123456Z")
        }
    }

    /// The same events through tracing-subscriber's default line and fields, and through
    /// [`LogLine`] and [`LogFields`], as `init_tracing` builds it.
    fn whole_lines(ansi: bool, emit: fn()) -> (String, String) {
        let run = |fast: bool| {
            let buffer = Buffer::default();
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(ansi)
                .with_writer(buffer.clone());
            if fast {
                let layer = layer
                    .event_format(LogLine::with_timer(FixedTime))
                    .fmt_fields(LogFields);
                let subscriber = tracing_subscriber::registry().with(layer);
                tracing::subscriber::with_default(subscriber, emit);
            } else {
                let subscriber = tracing_subscriber::registry().with(layer.with_timer(FixedTime));
                tracing::subscriber::with_default(subscriber, emit);
            }
            let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
            text
        };
        (run(false), run(true))
    }

    /// Every level and kind of field outside any span (the direct path), then inside one
    /// and inside two (the library's path), then outside again.
    fn events_in_and_out_of_spans() {
        let sid = "CA0123456789abcdef0123456789abcdef";
        tracing::info!(
            provider = "twilio",
            call_id = %sid,
            outcome = "continue",
            reason = "no_arrangement",
            source = "cache",
            arrangement_id = Option::<&str>::None,
            "call decided"
        );
        tracing::error!(endpoint = "voice", error = "timed out", "internal failure");
        tracing::warn!(status = 403u64, shown = ?Some("x"), r#type = "raw", "rejected");
        tracing::debug!(n = 1, "debug");
        tracing::trace!(quoted = "a \"b\"", "trace");
        tracing::info!(target: "custom::target", field = %"display", "{} formatted", 2);
        {
            let outer = tracing::info_span!("request", method = "POST", n = 3);
            let _o = outer.enter();
            tracing::info!(inner = true, "inside one span");
            let inner = tracing::info_span!("lookup");
            let _i = inner.enter();
            tracing::warn!(caller = "+44********56", "inside two spans");
        }
        tracing::info!(after = "spans", "outside again");
        // A record of the `log` crate, bridged as tracing-subscriber's `try_init` bridges
        // sqlx's: the line names the record's own target.
        let record = log::Record::builder()
            .level(log::Level::Warn)
            .target("sqlx::query")
            .args(format_args!("slow statement"))
            .module_path_static(Some("sqlx::query"))
            .file_static(Some("query.rs"))
            .line(Some(7))
            .build();
        tracing_log::format_trace(&record).unwrap();
    }

    #[test]
    fn whole_lines_are_written_exactly_as_the_default_format_writes_them() {
        for ansi in [false, true] {
            let (default, fast) = whole_lines(ansi, events_in_and_out_of_spans);
            assert_eq!(fast, default, "ansi={ansi}");
            assert_eq!(fast.lines().count(), 10, "{fast}");
        }
        let (_, plain) = whole_lines(false, events_in_and_out_of_spans);
        let first = plain.lines().next().unwrap();
        assert_eq!(
            first,
            "2026-12-08T02:30:00.123456Z  INFO fairline::telemetry::log_format::tests: call decided \
             provider=\"twilio\" call_id=CA0123456789abcdef0123456789abcdef outcome=\"continue\" \
             reason=\"no_arrangement\" source=\"cache\""
        );
        assert!(
            plain.contains("  WARN request{method=\"POST\" n=3}:lookup: "),
            "{plain}"
        );
        assert!(
            plain.ends_with("  WARN sqlx::query: slow statement\n"),
            "{plain}"
        );
    }

    #[test]
    fn fields_are_written_exactly_as_the_default_formatter_writes_them() {
        for ansi in [false, true] {
            let (default, fast) = both(ansi, events);
            assert_eq!(fast, default, "ansi={ansi}");
            assert_eq!(fast.lines().count(), 4, "{fast}");
        }
        let (_, plain) = both(false, events);
        assert!(plain.contains(
            "call decided provider=\"twilio\" call_id=CA0123456789abcdef0123456789abcdef \
             outcome=\"continue\" reason=\"no_arrangement\" source=\"cache\""
        ));
    }
}
