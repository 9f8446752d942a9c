//! Renders a DICOM ECG waveform file on standard paper.
//!
//! `cargo run -p dxhub-ecg --example render_file -- IN.dcm OUT.{svg,png} [--speed 25|50]
//! [--gain 5|10|20] [--12x1] [--px-per-mm N] [--header LINE]...`
//!
//! Limb leads III, aVR, aVL, aVF are derived from I and II when the file has none of them.

use dxhub_ecg::render::{Layout, RenderOptions, png, svg};
use dxhub_ecg::{derive_limb_leads, read_dicom};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut files = Vec::new();
    let mut opts = RenderOptions::default();
    let mut ppm = 8.0f32;
    let mut header = Vec::new();
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--speed" => opts.speed_mm_s = value()?.parse()?,
            "--gain" => opts.gain_mm_per_mv = value()?.parse()?,
            "--12x1" => opts.layout = Layout::TwelveByOne,
            "--px-per-mm" => ppm = value()?.parse()?,
            "--header" => header.push(value()?),
            _ => files.push(a),
        }
    }
    let [input, output] = files.as_slice() else {
        return Err("usage: render_file IN.dcm OUT.svg|OUT.png [options]".into());
    };
    let mut ecg = read_dicom(&std::fs::read(input)?)?;
    derive_limb_leads(&mut ecg);
    if header.is_empty() {
        header.push(format!(
            "{}   ID {}   {}",
            ecg.patient.name.as_deref().unwrap_or("—"),
            ecg.patient.id.as_deref().unwrap_or("—"),
            ecg.acquired_at.as_deref().unwrap_or("")
        ));
        header.push(ecg.statements.join("; "));
    }
    let bytes = if output.ends_with(".png") {
        png(&ecg, &header, &opts, ppm)?
    } else {
        svg(&ecg, &header, &opts)?.into_bytes()
    };
    std::fs::write(output, bytes)?;
    Ok(())
}
