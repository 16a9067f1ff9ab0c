//! Twilio Programmable Voice.
