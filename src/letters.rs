//! Letters to the customer (SPEC §13): `notice`, `review` and `ended`, in English, Welsh or
//! both, as HTML (with a print stylesheet), plain text or PDF (A4, DejaVu Sans embedded).
//!
//! A letter is built from a template (`assets/letters/{kind}.{en|cy}.txt`, or the file of the
//! same name in `[letters] templates_dir`) filled from the record. The template language is
//! small: `# ` starts a heading, a blank line separates paragraphs, `{{name}}` is replaced by a
//! value, and a line holding only `{{rules}}` becomes one list item per rule. A line whose
//! placeholder has no value (no customer explanation, no advocate…) is left out, and so is a
//! heading with nothing under it.

use std::path::Path;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::config::lifecycle::Letterhead;
use crate::domain::{Arrangement, ArrangementKind, ArrangementStatus, Language};
use crate::messages::{allowance_text, windows_text};
use crate::store::lifecycle::{ArrangementReview, ReviewDecision};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LetterKind {
    Notice,
    Review,
    Ended,
}

impl LetterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LetterKind::Notice => "notice",
            LetterKind::Review => "review",
            LetterKind::Ended => "ended",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "notice" => Some(LetterKind::Notice),
            "review" => Some(LetterKind::Review),
            "ended" => Some(LetterKind::Ended),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LetterFormat {
    Html,
    Text,
    Pdf,
}

impl LetterFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "html" => Some(LetterFormat::Html),
            "text" => Some(LetterFormat::Text),
            "pdf" => Some(LetterFormat::Pdf),
            _ => None,
        }
    }
}

/// One block of a letter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    Heading(String),
    /// A paragraph; `\n` inside keeps a line break (signatures).
    Para(String),
    /// A list item (the rules).
    Item(String),
}

/// The whole letter in one language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub language: Language,
    /// The date of the letter, in words.
    pub date: String,
    pub blocks: Vec<Block>,
}

/// A letter: the letterhead once, then the letter in each language, the first named first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Letter {
    pub letterhead: Vec<String>,
    pub sections: Vec<Section>,
}

/// Everything a letter is made from.
pub struct LetterInput<'a> {
    pub kind: LetterKind,
    pub arrangement: &'a Arrangement,
    /// The latest review (needed for `review`).
    pub review: Option<&'a ArrangementReview>,
    pub organisation: &'a str,
    pub letterhead: &'a Letterhead,
    /// Display names of the designated staff, in order.
    pub staff_names: Vec<String>,
    pub now: DateTime<Utc>,
    pub tz: Tz,
    pub languages: &'a [Language],
    pub templates_dir: Option<&'a Path>,
}

#[derive(Debug, thiserror::Error)]
pub enum LetterError {
    #[error("no review has been recorded for this arrangement")]
    NoReview,
    #[error("the arrangement has not ended")]
    NotEnded,
    #[error("the template {0} could not be read")]
    Template(String),
    #[error("the PDF could not be made: {0}")]
    Pdf(String),
}

// ---------------------------------------------------------------------------------------------
// Words
// ---------------------------------------------------------------------------------------------

const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const CY_MONTHS: [&str; 12] = [
    "Ionawr",
    "Chwefror",
    "Mawrth",
    "Ebrill",
    "Mai",
    "Mehefin",
    "Gorffennaf",
    "Awst",
    "Medi",
    "Hydref",
    "Tachwedd",
    "Rhagfyr",
];
const EN_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const CY_DAYS: [&str; 7] = [
    "Dydd Llun",
    "Dydd Mawrth",
    "Dydd Mercher",
    "Dydd Iau",
    "Dydd Gwener",
    "Dydd Sadwrn",
    "Dydd Sul",
];

/// "10 November 2026" / "10 Tachwedd 2026".
pub fn date_words(language: Language, d: NaiveDate) -> String {
    let month = d.month0() as usize % 12;
    match language {
        Language::En => format!("{} {} {}", d.day(), EN_MONTHS[month], d.year()),
        Language::Cy => format!("{} {} {}", d.day(), CY_MONTHS[month], d.year()),
    }
}

/// The date at the top of a letter, with its day: "Tuesday 10 November 2026" /
/// "Dydd Mawrth 10 Tachwedd 2026".
pub fn letter_date(language: Language, d: NaiveDate) -> String {
    let day = d.weekday().num_days_from_monday() as usize % 7;
    match language {
        Language::En => format!("{} {}", EN_DAYS[day], date_words(language, d)),
        Language::Cy => format!("{} {}", CY_DAYS[day], date_words(language, d)),
    }
}

fn local_date(t: DateTime<Utc>, tz: Tz) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

fn join_or(language: Language, names: &[String]) -> String {
    let or = match language {
        Language::En => "or",
        Language::Cy => "neu",
    };
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {or} {last}", init.join(", ")),
    }
}

/// Each rule of the arrangement in plain words (empty once it has ended).
pub fn rules(language: Language, a: &Arrangement, staff_names: &[String]) -> Vec<String> {
    let en = language == Language::En;
    let mut out = Vec::new();
    if a.kind == ArrangementKind::Blocked {
        out.push(if en {
            "You may not telephone us. Please contact us in writing instead.".to_owned()
        } else {
            "Ni chewch ein ffonio. Cysylltwch â ni yn ysgrifenedig yn lle hynny, os gwelwch yn dda."
                .to_owned()
        });
        return out;
    }
    if !a.windows.is_empty() {
        let times = windows_text(language, &a.windows);
        out.push(if en {
            format!("You may telephone us only at these times: {times}.")
        } else {
            format!("Dim ond ar yr adegau hyn y cewch ein ffonio: {times}.")
        });
    }
    if let Some(al) = a.allowance {
        let calls = allowance_text(language, al);
        out.push(if en {
            format!("You may make {calls}.")
        } else {
            format!("Cewch wneud {calls}.")
        });
    }
    if !staff_names.is_empty() {
        let names = join_or(language, staff_names);
        out.push(if en {
            format!("Your calls will be put through only to {names}.")
        } else {
            format!("Dim ond at {names} y bydd eich galwadau'n cael eu trosglwyddo.")
        });
    }
    if let Some(m) = a.max_call_minutes {
        out.push(if en {
            format!("Each call may last up to {m} minutes.")
        } else {
            format!("Gall pob galwad bara hyd at {m} munud.")
        });
    }
    out
}

/// The value of each placeholder in one language.
fn value(input: &LetterInput<'_>, language: Language, name: &str) -> Option<String> {
    let a = input.arrangement;
    let en = language == Language::En;
    let date = |t: DateTime<Utc>| date_words(language, local_date(t, input.tz));
    let text = |s: &Option<String>| s.as_ref().filter(|s| !s.trim().is_empty()).cloned();
    let v = match name {
        "organisation" => Some(input.organisation.to_owned()),
        "customer_ref" => Some(a.customer_ref.clone()),
        "customer_name" => text(&a.customer_name),
        "greeting" => Some(match (&a.customer_name, en) {
            (Some(n), true) if !n.trim().is_empty() => format!("Dear {n},"),
            (Some(n), false) if !n.trim().is_empty() => format!("Annwyl {n},"),
            (_, true) => "Dear customer,".to_owned(),
            (_, false) => "Annwyl gwsmer,".to_owned(),
        }),
        "explanation" => text(&a.customer_explanation),
        "starts" => Some(date(a.starts_at)),
        "ends" => Some(date(a.ends_at)),
        "review_date" => Some(date_words(language, a.review_due)),
        "decided_by" => Some(a.decided_by.clone()),
        "advocacy" => text(&input.letterhead.advocacy_text).or_else(|| {
            Some(if en {
                "You may ask a friend, relative or advocate to help you or to speak for you."
                    .to_owned()
            } else {
                "Cewch ofyn i ffrind, perthynas neu eiriolwr eich helpu neu siarad ar eich rhan."
                    .to_owned()
            })
        }),
        "advocate" => text(&a.advocate).map(|adv| {
            if en {
                format!("You have told us that {adv} is helping you.")
            } else {
                format!("Rydych wedi dweud wrthym fod {adv} yn eich helpu.")
            }
        }),
        "appeal_contact" => text(&input.letterhead.appeal_contact).or_else(|| {
            Some(if en {
                format!("{} at the address above", input.organisation)
            } else {
                format!("{} yn y cyfeiriad uchod", input.organisation)
            })
        }),
        "reviewed_on" => input.review.map(|r| date(r.reviewed_at)),
        "review_outcome" => input.review.map(|r| match (r.outcome, en) {
            (ReviewDecision::Continue, true) => format!(
                "We have decided that the arrangement will continue. We will review it again by {}. It ends on {}.",
                date_words(language, a.review_due),
                date(a.ends_at)
            ),
            (ReviewDecision::Continue, false) => format!(
                "Rydym wedi penderfynu y bydd y trefniant yn parhau. Byddwn yn ei adolygu eto erbyn {}. Bydd yn dod i ben ar {}.",
                date_words(language, a.review_due),
                date(a.ends_at)
            ),
            (ReviewDecision::Vary, true) => "We have decided to change the arrangement. From now on it works as set out below.".to_owned(),
            (ReviewDecision::Vary, false) => "Rydym wedi penderfynu newid y trefniant. O hyn ymlaen, mae'n gweithio fel y nodir isod.".to_owned(),
            (ReviewDecision::End, true) => format!(
                "We have decided to end the arrangement. From {} you may contact us in the usual way.",
                date(r.reviewed_at)
            ),
            (ReviewDecision::End, false) => format!(
                "Rydym wedi penderfynu dod â'r trefniant i ben. O {} ymlaen, cewch gysylltu â ni yn y ffordd arferol.",
                date(r.reviewed_at)
            ),
        }),
        "ended_on" => Some(date(crate::store::common::effective_end(a))),
        _ => None,
    };
    v.filter(|s| !s.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------

fn built_in(kind: LetterKind, language: Language) -> &'static str {
    match (kind, language) {
        (LetterKind::Notice, Language::En) => include_str!("../assets/letters/notice.en.txt"),
        (LetterKind::Notice, Language::Cy) => include_str!("../assets/letters/notice.cy.txt"),
        (LetterKind::Review, Language::En) => include_str!("../assets/letters/review.en.txt"),
        (LetterKind::Review, Language::Cy) => include_str!("../assets/letters/review.cy.txt"),
        (LetterKind::Ended, Language::En) => include_str!("../assets/letters/ended.en.txt"),
        (LetterKind::Ended, Language::Cy) => include_str!("../assets/letters/ended.cy.txt"),
    }
}

fn template(
    kind: LetterKind,
    language: Language,
    dir: Option<&Path>,
) -> Result<String, LetterError> {
    let name = format!("{}.{}.txt", kind.as_str(), language.as_str());
    if let Some(dir) = dir {
        let path = dir.join(&name);
        if path.is_file() {
            return std::fs::read_to_string(&path).map_err(|_| LetterError::Template(name));
        }
    }
    Ok(built_in(kind, language).to_owned())
}

/// Replace every `{{name}}` in `line`; `None` when one of them has no value.
fn fill(line: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let name = rest[start + 2..start + 2 + len].trim();
        out.push_str(&lookup(name)?);
        rest = &rest[start + 2 + len + 2..];
    }
    out.push_str(rest);
    Some(out)
}

fn blocks(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    rule_lines: &[String],
) -> Vec<Block> {
    let mut out = Vec::new();
    for para in text.split("\n\n") {
        let mut lines: Vec<String> = Vec::new();
        let flush = |lines: &mut Vec<String>, out: &mut Vec<Block>| {
            if !lines.is_empty() {
                out.push(Block::Para(lines.join("\n")));
                lines.clear();
            }
        };
        for raw in para.lines() {
            let line = raw.trim_end();
            if line.trim().is_empty() {
                continue;
            }
            if line.trim() == "{{rules}}" {
                flush(&mut lines, &mut out);
                out.extend(rule_lines.iter().cloned().map(Block::Item));
            } else if let Some(h) = line.strip_prefix("# ") {
                flush(&mut lines, &mut out);
                if let Some(h) = fill(h, lookup) {
                    out.push(Block::Heading(h));
                }
            } else if let Some(item) = line.strip_prefix("- ") {
                flush(&mut lines, &mut out);
                if let Some(item) = fill(item, lookup) {
                    out.push(Block::Item(item));
                }
            } else if let Some(l) = fill(line, lookup) {
                lines.push(l);
            }
        }
        flush(&mut lines, &mut out);
    }
    // A heading with nothing under it (e.g. the rules of an arrangement that has ended).
    let mut kept = Vec::with_capacity(out.len());
    for (i, b) in out.iter().enumerate() {
        if let Block::Heading(_) = b {
            let next_is_content = out
                .get(i + 1)
                .is_some_and(|n| !matches!(n, Block::Heading(_)));
            if i > 0 && !next_is_content {
                continue;
            }
        }
        kept.push(b.clone());
    }
    kept
}

/// Build the letter. `NoReview` for a review letter without a review; `NotEnded` for an ended
/// letter while the arrangement is scheduled or active.
pub fn build(input: &LetterInput<'_>) -> Result<Letter, LetterError> {
    let a = input.arrangement;
    let status = a.status_at(input.now);
    match input.kind {
        LetterKind::Review if input.review.is_none() => return Err(LetterError::NoReview),
        LetterKind::Ended
            if !matches!(
                status,
                ArrangementStatus::Expired | ArrangementStatus::Revoked
            ) =>
        {
            return Err(LetterError::NotEnded)
        }
        _ => {}
    }
    let in_force = matches!(
        status,
        ArrangementStatus::Active | ArrangementStatus::Scheduled
    );
    let mut letterhead = vec![input.organisation.to_owned()];
    if let Some(addr) = &input.letterhead.address {
        letterhead.extend(
            addr.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    if let Some(p) = &input.letterhead.phone {
        letterhead.push(p.clone());
    }
    if let Some(e) = &input.letterhead.email {
        letterhead.push(e.clone());
    }
    let today = local_date(input.now, input.tz);
    let mut sections = Vec::new();
    for &language in input.languages {
        let text = template(input.kind, language, input.templates_dir)?;
        let rule_lines = if in_force {
            rules(language, a, &input.staff_names)
        } else {
            Vec::new()
        };
        let lookup = |name: &str| value(input, language, name);
        sections.push(Section {
            language,
            date: letter_date(language, today),
            blocks: blocks(&text, &lookup, &rule_lines),
        });
    }
    Ok(Letter {
        letterhead,
        sections,
    })
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/// Plain text: the letterhead, then each language's letter, separated by a rule.
pub fn to_text(letter: &Letter) -> String {
    let mut out = String::new();
    for l in &letter.letterhead {
        out.push_str(l);
        out.push('\n');
    }
    for (i, s) in letter.sections.iter().enumerate() {
        if i > 0 {
            out.push_str("\n----------------------------------------\n");
        }
        out.push('\n');
        out.push_str(&s.date);
        out.push_str("\n\n");
        for b in &s.blocks {
            match b {
                Block::Heading(h) => {
                    out.push_str(h);
                    out.push('\n');
                    out.push_str(&"=".repeat(h.chars().count()));
                    out.push_str("\n\n");
                }
                Block::Para(p) => {
                    out.push_str(p);
                    out.push_str("\n\n");
                }
                Block::Item(item) => {
                    out.push_str("  * ");
                    out.push_str(item);
                    out.push_str("\n\n");
                }
            }
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Arial,sans-serif;font-size:11pt;line-height:1.45;\
color:#111;max-width:42em;margin:2em auto;padding:0 1em}\
.letterhead{text-align:right;margin-bottom:2em}.letterhead p{margin:0}\
.letterhead .org{font-weight:bold;font-size:13pt}\
.date{margin-bottom:1.5em}h1{font-size:14pt;margin:0 0 .5em}h2{font-size:12pt;margin:1.4em 0 .4em}\
ul{padding-left:1.4em}li{margin:.3em 0}\
section+section{border-top:1px solid #999;margin-top:3em;padding-top:2em}\
@media print{@page{size:A4;margin:20mm}body{margin:0;max-width:none;padding:0;font-size:11pt}\
section+section{border-top:none;margin-top:0;padding-top:0;break-before:page;page-break-before:always}}";

/// HTML with a print stylesheet (A4); each language in its own `<section lang>`.
pub fn to_html(letter: &Letter) -> String {
    let title = letter
        .sections
        .first()
        .and_then(|s| {
            s.blocks.iter().find_map(|b| match b {
                Block::Heading(h) => Some(h.clone()),
                _ => None,
            })
        })
        .unwrap_or_default();
    let lang = letter
        .sections
        .first()
        .map(|s| s.language.as_str())
        .unwrap_or("en");
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    let mut header = String::from("<header class=\"letterhead\">\n");
    for (i, l) in letter.letterhead.iter().enumerate() {
        let class = if i == 0 { " class=\"org\"" } else { "" };
        header.push_str(&format!("<p{class}>{}</p>\n", esc(l)));
    }
    header.push_str("</header>\n");
    for s in &letter.sections {
        // Each language is a whole letter (printed from a new page), letterhead included.
        out.push_str(&format!(
            "<section lang=\"{}\">\n{header}<p class=\"date\">{}</p>\n",
            s.language.as_str(),
            esc(&s.date)
        ));
        let mut first_heading = true;
        let mut in_list = false;
        for b in &s.blocks {
            let is_item = matches!(b, Block::Item(_));
            if in_list && !is_item {
                out.push_str("</ul>\n");
                in_list = false;
            }
            match b {
                Block::Heading(h) => {
                    let tag = if first_heading { "h1" } else { "h2" };
                    first_heading = false;
                    out.push_str(&format!("<{tag}>{}</{tag}>\n", esc(h)));
                }
                Block::Para(p) => {
                    let lines: Vec<String> = p.split('\n').map(esc).collect();
                    out.push_str(&format!("<p>{}</p>\n", lines.join("<br>")));
                }
                Block::Item(item) => {
                    if !in_list {
                        out.push_str("<ul>\n");
                        in_list = true;
                    }
                    out.push_str(&format!("<li>{}</li>\n", esc(item)));
                }
            }
        }
        if in_list {
            out.push_str("</ul>\n");
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

const FONT_REGULAR: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
const FONT_BOLD: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-Bold.ttf");

/// PDF: A4, DejaVu Sans embedded (covers ŵ ŷ â), text extractable; each language from a new page.
pub fn to_pdf(letter: &Letter) -> Result<Vec<u8>, LetterError> {
    use genpdf::{elements, fonts, style, Element as _};
    let font = |bytes: &[u8]| {
        fonts::FontData::new(bytes.to_vec(), None).map_err(|e| LetterError::Pdf(e.to_string()))
    };
    let family = fonts::FontFamily {
        regular: font(FONT_REGULAR)?,
        bold: font(FONT_BOLD)?,
        italic: font(FONT_REGULAR)?,
        bold_italic: font(FONT_BOLD)?,
    };
    let mut doc = genpdf::Document::new(family);
    doc.set_paper_size(genpdf::PaperSize::A4);
    doc.set_font_size(11);
    doc.set_line_spacing(1.3);
    if let Some(Block::Heading(h)) = letter
        .sections
        .first()
        .and_then(|s| s.blocks.iter().find(|b| matches!(b, Block::Heading(_))))
    {
        doc.set_title(h.clone());
    }
    let mut decorator = genpdf::SimplePageDecorator::new();
    decorator.set_margins(20);
    doc.set_page_decorator(decorator);

    for (i, s) in letter.sections.iter().enumerate() {
        if i > 0 {
            doc.push(elements::PageBreak::new());
        }
        for (j, l) in letter.letterhead.iter().enumerate() {
            let p = elements::Paragraph::new(l.clone()).aligned(genpdf::Alignment::Right);
            if j == 0 {
                doc.push(p.styled(style::Style::new().bold().with_font_size(13)));
            } else {
                doc.push(p);
            }
        }
        doc.push(elements::Break::new(1.5));
        doc.push(elements::Paragraph::new(s.date.clone()));
        doc.push(elements::Break::new(1));
        let mut first_heading = true;
        for b in &s.blocks {
            match b {
                Block::Heading(h) => {
                    let size = if first_heading { 14 } else { 12 };
                    first_heading = false;
                    doc.push(elements::Break::new(0.5));
                    doc.push(
                        elements::Paragraph::new(h.clone())
                            .styled(style::Style::new().bold().with_font_size(size)),
                    );
                    doc.push(elements::Break::new(0.3));
                }
                Block::Para(p) => {
                    for line in p.split('\n') {
                        doc.push(elements::Paragraph::new(line.to_owned()));
                    }
                    doc.push(elements::Break::new(0.6));
                }
                Block::Item(item) => {
                    let mut list = elements::UnorderedList::new();
                    list.push(elements::Paragraph::new(item.clone()));
                    doc.push(list);
                    doc.push(elements::Break::new(0.3));
                }
            }
        }
    }
    let mut buf = Vec::new();
    doc.render(&mut buf)
        .map_err(|e| LetterError::Pdf(e.to_string()))?;
    slim_pdf(&buf)
}

/// The PDF library writes a PDF/X-3 output intent with a 650 KB colour profile and leaves
/// every stream uncompressed; a letter needs neither. Drop the intent and compress the rest.
fn slim_pdf(raw: &[u8]) -> Result<Vec<u8>, LetterError> {
    let bad = |e: lopdf::Error| LetterError::Pdf(e.to_string());
    let mut pdf = lopdf::Document::load_mem(raw).map_err(bad)?;
    let root = pdf
        .trailer
        .get(b"Root")
        .and_then(lopdf::Object::as_reference)
        .map_err(bad)?;
    pdf.get_object_mut(root)
        .and_then(lopdf::Object::as_dict_mut)
        .map_err(bad)?
        .remove(b"OutputIntents");
    pdf.prune_objects();
    pdf.compress();
    let mut out = Vec::new();
    pdf.save_to(&mut out)
        .map_err(|e| LetterError::Pdf(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn welsh_dates_and_days() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 10).unwrap();
        assert_eq!(letter_date(Language::Cy, d), "Dydd Mawrth 10 Tachwedd 2026");
        assert_eq!(letter_date(Language::En, d), "Tuesday 10 November 2026");
        let months: Vec<String> = (1..=12)
            .map(|m| date_words(Language::Cy, NaiveDate::from_ymd_opt(2027, m, 1).unwrap()))
            .collect();
        assert_eq!(
            months,
            [
                "1 Ionawr 2027",
                "1 Chwefror 2027",
                "1 Mawrth 2027",
                "1 Ebrill 2027",
                "1 Mai 2027",
                "1 Mehefin 2027",
                "1 Gorffennaf 2027",
                "1 Awst 2027",
                "1 Medi 2027",
                "1 Hydref 2027",
                "1 Tachwedd 2027",
                "1 Rhagfyr 2027"
            ]
        );
        let days: Vec<String> = (7..=13)
            .map(|d| letter_date(Language::Cy, NaiveDate::from_ymd_opt(2026, 12, d).unwrap()))
            .collect();
        assert_eq!(
            days,
            [
                "Dydd Llun 7 Rhagfyr 2026",
                "Dydd Mawrth 8 Rhagfyr 2026",
                "Dydd Mercher 9 Rhagfyr 2026",
                "Dydd Iau 10 Rhagfyr 2026",
                "Dydd Gwener 11 Rhagfyr 2026",
                "Dydd Sadwrn 12 Rhagfyr 2026",
                "Dydd Sul 13 Rhagfyr 2026"
            ]
        );
    }

    #[test]
    fn a_line_with_an_empty_placeholder_and_an_empty_heading_are_left_out() {
        let lookup = |n: &str| match n {
            "a" => Some("A".to_owned()),
            _ => None,
        };
        let b = blocks(
            "# T\n{{a}}\n\n{{missing}}\n\n# Empty\n{{rules}}\n\n# Kept\nx {{a}}",
            &lookup,
            &[],
        );
        assert_eq!(
            b,
            vec![
                Block::Heading("T".into()),
                Block::Para("A".into()),
                Block::Heading("Kept".into()),
                Block::Para("x A".into()),
            ]
        );
    }
}
