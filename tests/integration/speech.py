"""Speech made on this machine for the transcription tests and benchmark: flite (slt and rms voices) speaks a
corpus of known sentences, which are joined with pauses into one WAV, and ffmpeg muxes it with video into
HLS — a finished VOD written at full speed, or a live stream written in real time."""
import os
import re
import subprocess
import wave

RATE = 16000

CORPUS = [
    "The city council approved the new budget for public schools.",
    "Firefighters contained the warehouse fire near the river before midnight.",
    "Heavy rain is expected across the valley tomorrow morning.",
    "The mayor will speak to reporters at noon today.",
    "Traffic on the main bridge is moving slowly after an accident.",
    "Thousands of people marched downtown on Saturday afternoon.",
    "The police closed two streets near the stadium.",
    "Volunteers handed out water and food to the crowd.",
    "The governor signed the bill into law this evening.",
    "Computer show me the camera on the north side.",
    "The train station reopened after a short delay.",
    "Students gathered in the park to listen to music.",
    "The hospital said three people were treated for minor injuries.",
    "Workers are repairing the power lines along the highway.",
    "The airport expects more flights during the holiday week.",
    "A small boat was found near the harbor this morning.",
    "The museum will open a new exhibit next month.",
    "Prices at the grocery store went up again this year.",
    "The weather service issued a warning for strong winds.",
    "The team won the game with a late goal.",
    "Local farmers are selling fresh fruit at the market.",
    "The school board will vote on the plan next week.",
]
WAKE_WORD = "computer"
VOICES = ["slt", "rms"]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance over words (substitutions, insertions, deletions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp in enumerate(hypothesis, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp))
        previous = current
    return previous[-1]


def speak(directory: str, sentences=CORPUS, pause: float = 1.2, lead: float = 1.0) -> tuple[str, list[tuple[float, float, str]]]:
    """Speaks `sentences` (voices alternating) into one 16 kHz WAV with `pause` seconds between them; answers
    its path and each sentence's (start, end, text) in seconds from the start of the audio."""
    silence = lambda seconds: b"\x00\x00" * int(RATE * seconds)  # noqa: E731
    frames = bytearray(silence(lead))
    spans = []
    for index, sentence in enumerate(sentences):
        path = os.path.join(directory, f"sentence-{index}.wav")
        subprocess.run(["flite", "-voice", VOICES[index % len(VOICES)], "-t", sentence, "-o", path], check=True)
        with wave.open(path) as spoken:
            assert spoken.getframerate() == RATE and spoken.getnchannels() == 1 and spoken.getsampwidth() == 2
            audio = spoken.readframes(spoken.getnframes())
        start = len(frames) / 2 / RATE
        frames += audio
        spans.append((start, len(frames) / 2 / RATE, sentence))
        frames += silence(pause)
    out = os.path.join(directory, "speech.wav")
    with wave.open(out, "wb") as joined:
        joined.setnchannels(1)
        joined.setsampwidth(2)
        joined.setframerate(RATE)
        joined.writeframes(bytes(frames))
    return out, spans


def hls_arguments(wav: str, playlist: str, live: bool, audio: bool = True) -> list[str]:
    """ffmpeg: gray video at 10 fps with the speech as AAC, 1-second segments with program date times."""
    arguments = ["ffmpeg", "-loglevel", "error", "-y"]
    if live:
        arguments.append("-re")
    arguments += ["-f", "lavfi", "-i", "color=c=gray:s=160x120:r=10"]
    if audio:
        arguments += ["-i", wav, "-shortest", "-c:a", "aac", "-ar", "48000", "-b:a", "64k"]
    else:
        arguments += ["-t", "6"]
    arguments += ["-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-f", "hls", "-hls_time", "1",
                  "-hls_flags", "program_date_time" + ("" if not live else "+delete_segments"), "-hls_list_size", "0" if not live else "10"]
    if not live:
        arguments += ["-hls_playlist_type", "vod"]
    return arguments + [playlist]


def make_vod(wav: str, directory: str, audio: bool = True) -> str:
    """A finished HLS VOD of the speech (written at full speed); answers the playlist path."""
    playlist = os.path.join(directory, "vod.m3u8")
    subprocess.run(hls_arguments(wav, playlist, live=False, audio=audio), check=True, timeout=120)
    return playlist


def first_program_date_time(playlist_text: str) -> float:
    """The first EXT-X-PROGRAM-DATE-TIME of a playlist, as Unix seconds."""
    from datetime import datetime
    found = re.search(r"#EXT-X-PROGRAM-DATE-TIME:(\S+)", playlist_text).group(1)
    return datetime.fromisoformat(found.replace("Z", "+00:00")).timestamp()


def probe_start(url: str) -> float:
    """The first presentation time of a playlist or file, by ffprobe."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=start_time", "-of", "csv=p=0", url],
                         capture_output=True, text=True, timeout=60)
    return float(out.stdout.strip())
