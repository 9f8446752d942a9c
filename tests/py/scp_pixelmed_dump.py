"""Print PixelMed's reading of SCP-ECG records (Debian libpixelmed-java), one JSON line each.

Usage: scp_pixelmed_dump.py PIXELMED_JAR FILE.scp...

PixelMed (David Clunie's DICOM toolkit) has an SCP-ECG reader, com.pixelmed.scpecg.SCPECG,
that decodes Huffman tables, difference encoding and reference-beat subtraction. This script
writes a small Java program into a temporary directory, compiles it with javac against the jar
and runs it; output per file: ``{"file", "interval_us", "lead_numbers": [...],
"samples": [[...], ...], "reference_beat": [[...], ...]}`` (PixelMed's
getDecompressedRhythmData and getDecompressedReferenceBeatData: the rhythm as stored, i.e. the
residual when the reference beat was subtracted, which PixelMed does not add back), or
``{"file", "__error__"}``. Used by crates/dxhub-ecg/tests/scp_vs_encoder.rs as a third-party
reader of the records written by tests/py/scp_encode.py.
"""

import os
import subprocess
import sys
import tempfile

JAVA = r"""
import com.pixelmed.scpecg.SCPECG;
import com.pixelmed.dicom.BinaryInputStream;
import java.io.*;

public class ScpDump {
    public static void main(String[] args) {
        for (String f : args) {
            String name = f.replace("\\", "\\\\").replace("\"", "\\\"");
            StringBuilder sb = new StringBuilder();
            sb.append("{\"file\":\"").append(name).append("\"");
            try (InputStream fin = new BufferedInputStream(new FileInputStream(f))) {
                SCPECG scp = new SCPECG(new BinaryInputStream(fin, false), false);
                short[][] d = scp.getDecompressedRhythmData();
                sb.append(",\"interval_us\":").append(scp.getDecompressedRhythmDataSampleTimeInterval());
                sb.append(",\"lead_numbers\":[");
                int[] ln = scp.getLeadNumbers();
                for (int i = 0; i < ln.length; i++) sb.append(i > 0 ? "," : "").append(ln[i]);
                sb.append("],\"samples\":[");
                for (int l = 0; l < d.length; l++) {
                    sb.append(l > 0 ? ",[" : "[");
                    for (int i = 0; i < d[l].length; i++) sb.append(i > 0 ? "," : "").append(d[l][i]);
                    sb.append("]");
                }
                sb.append("],\"reference_beat\":[");
                short[][] r = scp.getDecompressedReferenceBeatData();
                for (int l = 0; r != null && l < r.length; l++) {
                    sb.append(l > 0 ? ",[" : "[");
                    for (int i = 0; r[l] != null && i < r[l].length; i++) sb.append(i > 0 ? "," : "").append(r[l][i]);
                    sb.append("]");
                }
                sb.append("]}");
            } catch (Throwable e) {
                sb = new StringBuilder();
                sb.append("{\"file\":\"").append(name).append("\"");
                sb.append(",\"__error__\":\"").append(String.valueOf(e).replace("\\", "\\\\").replace("\"", "'")).append("\"}");
            }
            System.out.println(sb);
        }
    }
}
"""


def main():
    jar, files = sys.argv[1], sys.argv[2:]
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "ScpDump.java"), "w") as f:
            f.write(JAVA)
        subprocess.run(["javac", "-nowarn", "-cp", jar, "-d", d, os.path.join(d, "ScpDump.java")],
                       check=True, stdout=subprocess.DEVNULL)
        cp = os.pathsep.join([d, jar])
        out = subprocess.run(["java", "-Djava.awt.headless=true", "-cp", cp, "ScpDump", *files],
                             check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        sys.stdout.write(out.stdout.decode())


if __name__ == "__main__":
    main()
