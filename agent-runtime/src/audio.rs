//! Telephone audio: G.711 μ-law, the 20 ms frames Twilio Media Streams carry, and
//! sample-rate conversion.

/// Twilio's stream rate.
pub const SAMPLE_RATE: u32 = 8_000;
/// Samples in one 20 ms frame at 8 kHz (and bytes, in μ-law).
pub const FRAME_SAMPLES: usize = 160;
/// Milliseconds of audio per frame.
pub const FRAME_MS: u64 = 20;

/// μ-law silence.
pub const ULAW_SILENCE: u8 = 0xFF;

const BIAS: i32 = 0x84;
const CLIP: i32 = 32_635;

/// G.711 μ-law encoding of one linear sample.
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let exponent = (7 - (s.leading_zeros() as i32 - 17).clamp(0, 7)) as u8;
    let mantissa = ((s >> (exponent + 3)) & 0x0F) as u8;
    !(sign | (exponent << 4) | mantissa)
}

const fn ulaw_decode_const(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    if sign != 0 { -magnitude as i16 } else { magnitude as i16 }
}

const DECODE_TABLE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_decode_const(i as u8);
        i += 1;
    }
    table
};

/// G.711 μ-law decoding of one byte.
#[inline]
pub fn ulaw_decode(byte: u8) -> i16 {
    DECODE_TABLE[byte as usize]
}

pub fn decode_into(ulaw: &[u8], out: &mut Vec<i16>) {
    out.extend(ulaw.iter().map(|b| ulaw_decode(*b)));
}

pub fn encode(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|s| ulaw_encode(*s)).collect()
}

/// 8 kHz → 16 kHz: each input sample followed by the mean of it and the next.
pub fn upsample_2x(input: &[i16], out: &mut Vec<i16>) {
    let Some(&last) = input.last() else { return };
    let start = out.len();
    out.resize(start + input.len() * 2, 0);
    upsample_2x_into(input, last, &mut out[start..]);
}

/// [`upsample_2x`] into `out` (twice `input`'s length), the last sample's mean taken
/// with `after`, the sample that follows `input`.
pub fn upsample_2x_into(input: &[i16], after: i16, out: &mut [i16]) {
    for (i, (&s, pair)) in input.iter().zip(out.chunks_exact_mut(2)).enumerate() {
        let next = input.get(i + 1).copied().unwrap_or(after);
        pair[0] = s;
        pair[1] = ((i32::from(s) + i32::from(next)) / 2) as i16;
    }
}

/// Converts mono linear PCM from `from_rate` to `to_rate` with windowed-sinc
/// interpolation, low-passed below the lower Nyquist frequency so that downsampling
/// does not alias.
pub fn resample(input: &[i16], from_rate: u32, to_rate: u32) -> Vec<i16> {
    if from_rate == to_rate || input.is_empty() {
        return input.to_vec();
    }
    const HALF_TAPS: i64 = 16;
    let ratio = f64::from(to_rate) / f64::from(from_rate);
    // Cutoff relative to the input rate, a little under Nyquist of the slower side.
    let cutoff = 0.94 * ratio.min(1.0);
    let out_len = ((input.len() as f64) * ratio).round() as usize;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len {
        let t = n as f64 / ratio;
        let center = t.floor() as i64;
        let mut acc = 0.0;
        let mut norm = 0.0;
        let reach = (HALF_TAPS as f64 / cutoff).ceil() as i64;
        for k in (center - reach + 1)..=(center + reach) {
            if k < 0 || k as usize >= input.len() {
                continue;
            }
            let x = (t - k as f64) * cutoff;
            let sinc = if x.abs() < 1e-9 { 1.0 } else { (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x) };
            let w = x / HALF_TAPS as f64;
            let window = if w.abs() >= 1.0 { 0.0 } else { 0.5 * (1.0 + (std::f64::consts::PI * w).cos()) };
            let h = sinc * window;
            acc += f64::from(input[k as usize]) * h;
            norm += h;
        }
        let v = if norm.abs() > 1e-9 { acc / norm } else { 0.0 };
        out.push(v.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16);
    }
    out
}

/// Mono samples of a WAV file (any rate, 8/16/24/32-bit integer or float PCM; several
/// channels are mixed down), at 8 kHz.
pub fn read_wav_8khz(path: &std::path::Path) -> Result<Vec<i16>, hound::Error> {
    let mut reader = hound::WavReader::open(path)?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1_i64 << (spec.bits_per_sample - 1)) as f32;
            reader.samples::<i32>().map(|s| s.map(|v| v as f32 * scale)).collect::<Result<_, _>>()?
        }
    };
    let mono: Vec<i16> = interleaved
        .chunks(channels)
        .map(|c| (c.iter().sum::<f32>() / channels as f32 * 32767.0).clamp(-32768.0, 32767.0) as i16)
        .collect();
    Ok(resample(&mono, spec.sample_rate, SAMPLE_RATE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_round_trip_is_within_quantization_error() {
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let back = ulaw_decode(ulaw_encode(s));
            let err = (i32::from(s) - i32::from(back)).abs();
            // Step size grows with magnitude: at most 1/16 of the value plus the bias.
            assert!(err <= (i32::from(s).abs() / 16).max(8) + 8, "{s} -> {back}");
        }
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
    }

    #[test]
    fn resampling_keeps_duration_and_a_tone_below_nyquist() {
        let tone: Vec<i16> = (0..22_050)
            .map(|n| ((n as f64 * 2.0 * std::f64::consts::PI * 440.0 / 22_050.0).sin() * 10_000.0) as i16)
            .collect();
        let out = resample(&tone, 22_050, 8_000);
        assert_eq!(out.len(), 8_000);
        let rms = (out[100..7_900].iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / 7_800.0).sqrt();
        assert!((rms - 7_071.0).abs() < 300.0, "rms {rms}");
        // A 6 kHz tone is above the new Nyquist (4 kHz) and must be filtered, not folded to 2 kHz.
        let high: Vec<i16> = (0..22_050)
            .map(|n| ((n as f64 * 2.0 * std::f64::consts::PI * 6_000.0 / 22_050.0).sin() * 10_000.0) as i16)
            .collect();
        let out = resample(&high, 22_050, 8_000);
        let rms = (out[100..7_900].iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / 7_800.0).sqrt();
        assert!(rms < 300.0, "aliased rms {rms}");
    }
}
