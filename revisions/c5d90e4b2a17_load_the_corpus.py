"""load the corpus

The help center goes in: articles into docs.documents, their passages with
embeddings into vectors.chunks — and, standing for the traffic a live
assistant collects, a year of conversations into docs.conversations and two
months of the EU instance's into eu.conversations.

Everything is generated here from seeded random generators (no download):
the same revision always writes the same data. RAGREV_SAMPLE_DOCS sets the
number of articles (default 700, about 3,000 passages); there are half as
many conversations. Conversation times lie in the year before 2026-11-27,
the day revision 4f0a2c7e9b58 archives what is older than 90 days, so what
it archives does not depend on when you run it.

The embedding is ragrev.embeddings.hashing(dim=64): words and word pairs
hashed into 64 signed buckets — a deterministic local stand-in for a model.

Each step is resumable (batches, checkpoints; ids fixed by the generator)
and has an inverse that deletes exactly what it inserted: the downgrade is
derived.

Revision ID: c5d90e4b2a17
Revises: 7e24a6c1f0b3
Create Date: 2026-03-09 14:00:00+00:00
"""
import datetime as dt
import os
import random

from ragrev.embeddings import hashing

revision = "c5d90e4b2a17"
down_revision = "7e24a6c1f0b3"
branch_labels = None
depends_on = None

TODAY = dt.datetime(2026, 11, 27)
EMBED = hashing(dim=64)
MODELS = ["City 3", "Trail 5", "Cargo 2", "Fold 1", "Gravel 4", "Kids 20"]
#: language -> (share of articles, source ids with weights, title pattern)
LANGS = {
    "en": (0.70, {1: 5, 2: 3, 3: 2, 4: 1}, "How to {task} on the Kestrel {model}"),
    "de": (0.18, {5: 1}, "Kestrel {model}: {task}"),
    "fr": (0.12, {6: 1}, "Kestrel {model} : {task}"),
}
SOURCE_URLS = {1: "https://help.kestrel.example/en/", 2: "https://service.kestrel.example/manuals/",
               3: "https://forum.kestrel.example/t/", 4: "https://kestrel.example/releases/",
               5: "https://help.kestrel.example/de/", 6: "https://help.kestrel.example/fr/"}

# topic -> language -> (tasks, sentences); {slots} are filled at random
TOPICS = {
    "battery": {
        "en": (["charge the battery", "store the battery for winter", "check battery health", "replace the battery"], [
            "Charge the battery of the {model} at room temperature, ideally above {temp} degrees.",
            "A full charge takes about {mins} minutes with the standard 4 A charger.",
            "For winter storage, leave the battery at {pct} percent and check it every {n} weeks.",
            "The battery health screen in the app shows the remaining capacity and the number of full cycles.",
            "If the battery LED blinks red {n} times, charge it fully and let it rest overnight.",
            "Replacement batteries for the {model} use part number {code}."]),
        "de": (["den Akku laden", "den Akku im Winter lagern", "den Akku tauschen"], [
            "Laden Sie den Akku des {model} bei Zimmertemperatur und nicht unter {temp} Grad.",
            "Eine volle Ladung dauert mit dem Standardladegerät etwa {mins} Minuten.",
            "Für die Lagerung im Winter ist ein Ladestand von {pct} Prozent ideal, und der Akku bleibt im Haus.",
            "Die Teilenummer des Ersatzakkus für das {model} ist {code}."]),
        "fr": (["charger la batterie", "stocker la batterie en hiver", "remplacer la batterie"], [
            "Chargez la batterie du {model} à température ambiante et pas en dessous de {temp} degrés.",
            "Une charge complète prend environ {mins} minutes avec le chargeur standard.",
            "Pour l'hiver, stockez la batterie à {pct} pour cent et vérifiez-la toutes les {n} semaines.",
            "La référence de la batterie de rechange du {model} est {code}."]),
    },
    "brakes": {
        "en": (["replace the brake pads", "bleed the hydraulic brakes", "fix squealing brakes"], [
            "The {model} uses hydraulic disc brakes; check the pads every {n}00 kilometres.",
            "Replace the brake pads when less than 1.5 mm of lining is left; the part number is {code}.",
            "Tighten the caliper bolts to {nm} Nm and spin the wheel to check that the rotor runs free.",
            "After fitting new pads, bed them in with {n} firm stops from 25 km/h.",
            "A spongy brake lever means air in the system: bleed the brakes with mineral oil, never DOT fluid.",
            "Squealing brakes are often caused by oil on the rotor; clean it with isopropyl alcohol."]),
        "de": (["die Bremsbeläge wechseln", "die Bremse entlüften"], [
            "Das {model} hat hydraulische Scheibenbremsen, die Beläge sollten alle {n}00 Kilometer geprüft werden.",
            "Die Bremsbeläge müssen gewechselt werden, wenn weniger als 1,5 mm Belag übrig ist ({code}).",
            "Ziehen Sie die Schrauben des Bremssattels mit {nm} Nm an und prüfen Sie, ob die Scheibe frei läuft.",
            "Ein weicher Hebel bedeutet Luft im System; entlüften Sie die Bremse mit Mineralöl."]),
        "fr": (["remplacer les plaquettes de frein", "purger les freins"], [
            "Le {model} utilise des freins à disque hydrauliques ; vérifiez les plaquettes tous les {n}00 kilomètres.",
            "Remplacez les plaquettes quand il reste moins de 1,5 mm de garniture ({code}).",
            "Serrez les vis de l'étrier à {nm} Nm et vérifiez que le disque tourne librement.",
            "Un levier spongieux indique de l'air dans le circuit : purgez les freins avec de l'huile minérale."]),
    },
    "drive": {
        "en": (["update the motor firmware", "calibrate the torque sensor", "clean the chain", "read error codes"], [
            "The motor of the {model} gives up to {torque} Nm of torque in Boost mode.",
            "Update the motor firmware to version {ver} from the Kestrel app under Settings, Bike, Firmware.",
            "Calibrate the torque sensor with the cranks level and no weight on the pedals.",
            "Clean and oil the chain every {n}00 kilometres, and more often after rain.",
            "Error code E{n}{n} on the display means the speed sensor lost the spoke magnet.",
            "The assist cuts out at 25 km/h, as the EN 15194 standard requires."]),
        "de": (["die Motorsoftware aktualisieren", "die Kette pflegen"], [
            "Die Motorsoftware wird in der App unter Einstellungen auf die Version {ver} aktualisiert.",
            "Der Drehmomentsensor wird mit waagerechten Kurbeln und ohne Last auf den Pedalen kalibriert.",
            "Die Kette sollte alle {n}00 Kilometer gereinigt und geölt werden, bei Regen öfter.",
            "Der Motor des {model} liefert im Boost-Modus bis zu {torque} Nm, die Unterstützung endet bei 25 km/h."]),
        "fr": (["mettre à jour le moteur", "entretenir la chaîne"], [
            "Mettez à jour le logiciel du moteur vers la version {ver} dans l'application, menu Réglages.",
            "Le capteur de couple se calibre avec les manivelles à l'horizontale et sans poids sur les pédales.",
            "Nettoyez et huilez la chaîne tous les {n}00 kilomètres, plus souvent sous la pluie.",
            "Le moteur du {model} donne jusqu'à {torque} Nm en mode Boost et l'assistance s'arrête à 25 km/h."]),
    },
    "app": {
        "en": (["pair the Kestrel app", "reset the display", "enable GPS tracking"], [
            "Pair the Kestrel app with the {model} by holding the light button for {n} seconds.",
            "Reset the display by holding both arrow keys for {n} seconds until it restarts.",
            "GPS tracking needs the connect module {code} and an active subscription.",
            "The app estimates the range of each assist level from your last {n} rides.",
            "Ride data syncs over Bluetooth whenever the app is open near the bike."]),
        "de": (["die App koppeln", "das Display zurücksetzen"], [
            "Die Kestrel App wird mit dem {model} gekoppelt, indem man die Lichttaste {n} Sekunden drückt.",
            "Das Display lässt sich zurücksetzen, wenn beide Pfeiltasten {n} Sekunden gedrückt werden.",
            "Die App zeigt die Reichweite für jede Stufe auf Basis der letzten {n} Fahrten."]),
        "fr": (["associer l'application", "réinitialiser l'écran"], [
            "Associez l'application Kestrel au {model} en maintenant le bouton des feux {n} secondes.",
            "Pour réinitialiser l'écran, maintenez les deux flèches pendant {n} secondes.",
            "L'application affiche l'autonomie de chaque niveau d'assistance selon vos {n} dernières sorties."]),
    },
    "tires": {
        "en": (["fix a flat tire", "set the tire pressure", "fit winter tires"], [
            "The recommended tire pressure for the {model} is {bar} bar at the front and a little more at the rear.",
            "To fix a flat tire, open the thru-axle and take the wheel out before you unseat the tire.",
            "Studded winter tires fit the {model} up to a width of {width} mm.",
            "Tubeless tires need {n}0 ml of sealant each, refreshed every few months.",
            "Check the tires for cuts and worn tread before every long ride."]),
        "de": (["den Reifendruck einstellen", "Winterreifen montieren"], [
            "Der empfohlene Reifendruck für das {model} ist {bar} bar vorne und etwas mehr hinten.",
            "Winterreifen mit Spikes passen auf das {model} bis zu einer Breite von {width} mm.",
            "Prüfen Sie die Reifen vor jeder langen Fahrt auf Schnitte und abgefahrenes Profil."]),
        "fr": (["régler la pression des pneus", "monter des pneus d'hiver"], [
            "La pression recommandée pour le {model} est de {bar} bar à l'avant et un peu plus à l'arrière.",
            "Les pneus d'hiver à clous vont sur le {model} jusqu'à une largeur de {width} mm.",
            "Vérifiez les pneus et l'usure de la bande de roulement avant chaque longue sortie."]),
    },
    "warranty": {
        "en": (["register the warranty", "make a warranty claim", "transfer ownership"], [
            "Register the warranty of the {model} within {n}0 days of purchase to get the extra year.",
            "The frame has a lifetime warranty; the battery is covered for {n} years or 800 cycles.",
            "A warranty claim needs the frame number, which is printed under the bottom bracket.",
            "Ownership can be transferred in the app, and the new owner keeps the remaining warranty.",
            "Wear parts such as brake pads, chains and tires are not covered by the warranty."]),
        "de": (["die Garantie registrieren"], [
            "Registrieren Sie die Garantie des {model} innerhalb von {n}0 Tagen nach dem Kauf.",
            "Der Rahmen hat eine lebenslange Garantie, der Akku ist {n} Jahre oder 800 Zyklen abgedeckt.",
            "Verschleißteile wie die Bremsbeläge und die Kette sind nicht von der Garantie gedeckt."]),
        "fr": (["enregistrer la garantie"], [
            "Enregistrez la garantie du {model} dans les {n}0 jours suivant l'achat.",
            "Le cadre est garanti à vie et la batterie pendant {n} ans ou 800 cycles.",
            "Les pièces d'usure comme les plaquettes, la chaîne et les pneus ne sont pas couvertes par la garantie."]),
    },
}
#: language -> (first question, follow-ups) of a conversation
ASKING = {
    "en": ("How do I {task} on my Kestrel {model}?", [
        "Thanks! How long does that take?", "It worked, thank you.", "Do I need special tools for that?",
        "Is that covered by the warranty?", "And what if the display shows an error afterwards?"]),
    "de": ("Wie kann ich beim Kestrel {model} {task}?", [
        "Danke! Wie lange dauert das?", "Brauche ich dafür Spezialwerkzeug?", "Ist das von der Garantie gedeckt?"]),
    "fr": ("Comment {task} sur mon Kestrel {model} ?", [
        "Merci ! Combien de temps faut-il ?", "Faut-il des outils spéciaux ?", "Est-ce couvert par la garantie ?"]),
}


# --- the corpus ----------------------------------------------------------------------------

def n_docs() -> int:
    return int(os.environ.get("RAGREV_SAMPLE_DOCS", "700"))


def sentence(rng, template, model):
    return template.format(
        model=model, n=rng.randint(2, 9), temp=rng.randint(5, 15), mins=rng.randint(180, 420),
        pct=rng.randint(40, 70), code=f"KP-{rng.randint(1000, 9999)}", nm=rng.randint(4, 12),
        torque=rng.randint(40, 90), ver=f"2.{rng.randint(1, 9)}.{rng.randint(0, 20)}",
        bar=f"{rng.uniform(1.8, 4.5):.1f}", width=rng.choice([42, 47, 50, 55, 60]))


def article(i):
    """Article ``i`` and its passages: the same for the same ``i``, always."""
    rng = random.Random(f"kestrel-article-{i}")
    lang = rng.choices(list(LANGS), weights=[v[0] for v in LANGS.values()])[0]
    _, sources, title_pattern = LANGS[lang]
    source = rng.choices(list(sources), weights=list(sources.values()))[0]
    topic = rng.choice(list(TOPICS))
    model = rng.choice(MODELS)
    tasks, own = TOPICS[topic][lang]
    task = rng.choice(tasks)
    title = title_pattern.format(task=task, model=model)
    others = [s for t, by_lang in TOPICS.items() if t != topic for s in by_lang[lang][1]]
    used, sentences = set(), []
    for _ in range(rng.randint(8, 16)):  # mostly on topic, a template at most once while others are left
        group = own if rng.random() < 0.8 else others
        pool = [t for t in group if t not in used] or [t for t in own + others if t not in used] or group
        template = rng.choice(pool)
        used.add(template)
        sentences.append(sentence(rng, template, model))
    passages = [" ".join(sentences[k:k + 3]) for k in range(0, len(sentences), 3)]
    doc = {"_id": f"kb-{i:05d}", "title": title, "body": "\n\n".join(passages), "source_id": source,
           "url": f"{SOURCE_URLS[source]}{i:05d}",
           "created_at": dt.datetime(2026, 3, 1) - dt.timedelta(days=rng.randint(0, 900), minutes=rng.randint(0, 1439))}
    return doc, passages, topic


def documents():
    for i in range(n_docs()):
        yield article(i)[0]


def chunks():
    for i in range(n_docs()):
        doc, passages, _ = article(i)
        vectors = EMBED([f"{doc['title']}. {p}" for p in passages])
        for k, (text, vec) in enumerate(zip(passages, vectors)):
            yield {"id": i * 100 + k, "doc_id": doc["_id"], "source_id": doc["source_id"], "position": k,
                   "text": text, "embedding": vec.tolist()}


# --- the conversations -----------------------------------------------------------------------

def n_sessions() -> int:
    return max(24, n_docs() // 2)


def exchange(rng, session, seq, ts, lang="en"):
    """A question and its answer, ``seq`` and ``seq + 1`` of ``session``."""
    topic = rng.choice(list(TOPICS))
    tasks, sentences = TOPICS[topic][lang]
    model = rng.choice(MODELS)
    first, follow_ups = ASKING[lang]
    question = first.format(task=rng.choice(tasks), model=model) if seq == 0 else rng.choice(follow_ups)
    answer = sentence(rng, rng.choice(sentences), model)
    ts2 = ts + dt.timedelta(seconds=rng.randint(3, 20))
    return [{"_id": f"{session}/{seq}", "session_id": session, "seq": seq, "ts": ts, "role": "user",
             "content": question},
            {"_id": f"{session}/{seq + 1}", "session_id": session, "seq": seq + 1, "ts": ts2, "role": "assistant",
             "content": answer}], ts2


def session_messages(i, rng=None, start=None, exchanges=None):
    """Conversation ``i`` of the main instance: 1 to 4 exchanges a minute or
    two apart, started ``days_ago(i)`` before TODAY."""
    rng = rng or random.Random(f"kestrel-session-{i}")
    session = f"c-{i:05d}"
    ts = start or TODAY - dt.timedelta(seconds=int(days_ago(i) * 86400) + rng.randint(0, 86399))
    out = []
    for _ in range(exchanges or rng.randint(1, 4)):
        pair, last = exchange(rng, session, len(out), ts)
        out += pair
        ts = last + dt.timedelta(seconds=rng.randint(30, 180))
    return out


def days_ago(i):
    """Session starts: the last 300 days, denser towards TODAY (usage grows)."""
    return 300.0 * (1 - (i + 1) / n_sessions()) ** 1.5


def conversations():
    for i in range(n_sessions()):
        yield from session_messages(i)


def eu_conversations():
    """The EU instance, live for two months: its own sessions (a few with a
    message stored twice by a client retry), replicas of the main instance's
    latest sessions that went on there, and sessions whose ids clash with
    other main sessions but are other conversations."""
    n = n_sessions()
    rng = random.Random("kestrel-eu")
    for j in range(max(8, n // 6)):
        start = TODAY - dt.timedelta(seconds=int(60 * 86400 * (1 - j / max(8, n // 6))) + rng.randint(0, 3600))
        session = f"eu-{j:05d}"
        ts, messages = start, []
        for _ in range(rng.randint(1, 3)):
            pair, last = exchange(rng, session, len(messages), ts, rng.choice(["en", "de", "fr"]))
            messages += pair
            ts = last + dt.timedelta(seconds=rng.randint(30, 180))
        yield from messages
        if j % 5 == 3:  # the client sent the first question twice
            yield {**messages[0], "_id": f"{session}/0-retry"}
    replicas = range(n - max(2, n // 40), n)
    for i in replicas:  # the same conversation, continued on the EU instance
        messages = session_messages(i)
        yield from messages
        more, _ = exchange(random.Random(f"kestrel-eu-more-{i}"), f"c-{i:05d}", len(messages),
                           messages[-1]["ts"] + dt.timedelta(minutes=2))
        yield from more
    for i in range(replicas.start - max(2, n // 60), replicas.start):  # same id, another conversation
        yield from session_messages(i, random.Random(f"kestrel-eu-clash-{i}"),
                                    TODAY - dt.timedelta(seconds=int(days_ago(i) * 86400) + 3 * 3600), exchanges=2)


def upgrade(op):
    op.docs.insert("documents", documents, batch_size=500)
    op.docs.validate_all("documents", {"type": "object", "required": ["title", "body", "source_id"]})
    op.vectors.insert("chunks", rows=chunks, batch_size=1000)
    op.docs.insert("conversations", conversations, batch_size=1000)
    op.eu.insert("conversations", eu_conversations, batch_size=1000)
