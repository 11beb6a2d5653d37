"""A safety net under the NLU: words of distress always bring the helplines that fit, even if the model missed them.

Cross-validation showed the `crisis` intent alone recognises only about half of the held-out crisis messages, so
these lists are broad on purpose, in our five languages (Darija in Arabic script and in Latin letters, "Arabizi"):
suicidal thoughts, self-harm, violence or threats at home, no place to sleep, poisoning or an overdose. A false
alarm adds the helplines above the normal answer and calls a person; a missed one leaves a young person alone.
Everyday hyperbole ("mort de rire", "this CV is killing me", "me muero de ganas") is taken out first, so it does
not alarm; "X is killing me" never matches a kind in the first place. The figures on a held-out set are printed
by tests/unit/test_safety.py.

Texts are normalised before matching: lower case, no accents, Arabic letter variants unified, punctuation made
spaces, letters repeated for emphasis cut down ("mourirrrr"). The patterns below are written in that form.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from bot.understanding.normalise import fold

KINDS: Final = ("suicide", "self_harm", "violence", "homeless", "poisoning")

# Who may hit or threaten at home (a subject keeps "beats me" = "no idea" and "mijn baas" out).
_WHO_FR = (
    r"(?:il|elle|ils|elles|on|pere|mere|daron|daronne|parents?|beau pere|belle mere|frere|soeur|oncle|tante|cousin|"
    r"copain|copine|mec|meuf|mari|femme|ex|famille|papa|maman|fils|demi frere)"
)
_WHO_EN = (
    r"(?:he|she|they|dad|father|mum|mom|mother|stepdad|stepfather|stepmom|stepmother|parents?|brother|sister|uncle|"
    r"aunt|cousin|husband|wife|boyfriend|girlfriend|bf|gf|partner|ex|family|son)"
)
_PILLS_FR = (
    r"(?:medocs?|medicaments?|cachets?|pilules?|comprimes?|somniferes?|anxiolytiques?|doliprane|"
    r"paracetamol|xanax)"
)
_PILLS_NL = r"(?:pillen|pilletjes|medicijnen|medicatie|tabletten|slaappillen|paracetamol)"
_PILLS_EN = r"(?:pills|tablets|meds|medication|painkillers|sleeping pills|paracetamol|tylenol)"
_PILLS_ES = r"(?:pastillas|pildoras|medicamentos|medicinas|comprimidos|somniferos|paracetamol)"

# Each kind: patterns of every language (people switch languages mid-sentence in Brussels, so all apply).
PATTERNS: Final[dict[str, list[str]]] = {
    "suicide": [
        # fr
        r"suicid",
        r"(?:\bj ?(?:e )?(?:vais|veux|voudrais|v|pense a|peux|devrais)|\bjvais|\bjveux|envie de|besoin de|penser a|"
        r"idees? de|decide de) (?:\w+ ){0,2}me (?:tuer|pendre|jeter (?:sous|du|d un|par)|foutre en l air)",
        r"\bme (?:pendre|foutre en l air|fous en l air)\b",
        r"(?:\bj?veux|\bj?vais|\bvoudrais|\baimerais|envie de|\bprefere(?:rais)?) (?:\w+ ){0,2}"
        r"(?:mourir|crever|en finir|disparaitre|plus (?:me reveiller|exister))",
        r"\ben finir\b",
        r"pens\w* (?:\w+ ){0,3}(?:a la mort|a mourir|au suicide)",
        r"\bidees noires\b",
        r"plus (?:envie|la force|le courage|aucune raison) de (?:vivre|continuer a vivre)",
        r"(?:veux|vais|peux|sais) (?:plus|pas) vivre(?! (?:chez|a|avec|ici|la|dans|en|sans|loin|pres|seul))",
        r"marre de (?:la )?vie\b|marre de vivre|sert a rien de vivre|la vie (?:n a|a) (?:plus )?(?:aucun|pas de) sens",
        r"mieux sans moi|personne (?:ne )?(?:me )?(?:regretterait|remarquerait)",
        r"(?:sauter|me jeter) (?:du|d un|par la|sous (?:un|le)) (?:pont|toit|fenetre|train|metro|balcon|\w+ etage)",
        # nl
        r"zelfmoord",
        r"mezelf (?:van kant|dood|om het leven|iets aan)",
        r"\bwil (?:\w+ ){0,2}(?:dood|doodgaan|sterven|verdwijnen|springen)\b",
        r"\b(?:liever|was ik maar) dood\b",
        r"(?:wil|kan) (?:\w+ )?(?:niet|ni|nie) meer (?:leven|verder|wakker worden)(?! (?:met|in|op|bij|zonder|van))",
        r"geen zin (?:meer )?(?:om|in) (?:te )?leven|leven (?:heeft )?geen zin",
        r"einde aan (?:\w+ ){0,2}(?:maken|te maken)|eind(?:e)? (?:maken )?aan mijn leven",
        r"zie het (?:niet|ni|nie) meer zitten",
        r"beter af (?:\w+ )?zonder (?:mij|me)\b",
        r"(?:voor|onder) (?:een|de) (?:trein|tram|metro) (?:springen|gaan liggen|te springen)",
        # en
        r"\bkill(?:ing)? my ?self\b|\bkms\b",
        r"\bend (?:it all|my life|things)\b|\bending (?:it all|my life|things|it)\b|(?:want|going|gonna|"
        r"wanna) (?:to )?end it\b",
        r"(?:better|happier) (?:off )?if i (?:was|were|wasn t|weren t) (?:gone|dead|not here|here)\b",
        r"\bwan(?:t|na|ted) (?:to )?die\b|\bwish i (?:was|were) dead\b|\brather be dead\b",
        r"don ?t want to (?:live|be alive|wake up|be here anymore|exist)"
        r"(?! (?:in|with|at|near|there|here|so|far|close|next|on|like that))",
        r"no reason to live|\bbetter off (?:dead|without me)\b|take my (?:own )?life|hang myself",
        r"jump(?:ing)? (?:off|in front of)\b",
        # es
        r"\bmatarme\b|me (?:quiero|voy a) matar\b|\bme mato\b",
        r"quitarme (?:la vida|de en medio)|acabar con (?:todo|mi vida)|terminar con mi vida",
        r"\b(?:quiero|quisiera|prefiero|ganas de) (?:\w+ )?morir(?:me)?\b|\bme quiero morir\b",
        r"no quiero (?:vivir|seguir viviendo|despertar)(?! (?:en|con|aqui|alli|solo|sola|asi))|ya no quiero seguir",
        r"desaparecer para siempre|\bquiero desaparecer\b",
        r"tirar(?:me)? (?:del|de un|por la|al|a las vias)|ahorcarme",
        r"(?:nadie|ninguno) me echaria de menos|(?:estarian|estaria) mejor sin mi|no vale la pena vivir",
        # ar (Arabic script, normalised: ة -> ه, ى -> ي, hamza forms -> ا)
        r"انتحار|ننتحر|انتحر|نقتل راسي|نقتل نفسي|اقتل نفسي|نقتل روحي",
        r"(?:بغيت|باغي|باغيه|نبغي|بدي|اريد ان|ابغي|حاب) (?:غير )?(?:نموت|اموت|موت)\b",
        r"(?:ما ?بقيتش|مابقيتش) (?:بغيت|باغي|باغيه) نعيش",
        r"نسالي معاها|نسالي مع (?:الحياه|حياتي)|ما ?عندها حتي معني|الحياه ما بقا فيها معني",
        r"(?:بغيت|باغي) نختفي|نختفي من (?:هاد|هذه) الدنيا",
        r"\bغير مت\b|الموت احسن|نلوح راسي|نرمي راسي",
        # ar in Latin letters (Arabizi)
        r"\b(?:bghi+t|bghite|bghyt|baghi|baghia|baghya|bagha|nbghi|kanbghi|bdi|bidi|tmnit|kan?tmen?na) "
        r"(?:ghir |gha |ga3 |safi )?n?m(?:o+u?|u+)t\b",
        r"\bne?(?:q|9|k)e?t{1,2}e?l ?(?:ras+i|n[ae]fsi|rou7i|ro7i)\b",
        r"\b(?:ne?nta(?:7|h)(?:e|a)?r|nti(?:7|h)(?:e|a)?r|inti(?:7|h)ar)\b",
        r"\bnsal(?:i|li) m3a(?:ha|\b (?:7yati|l7yat|l7ya|dounia|ddounia|denya))\b",
        # "ma bqitch baghi n3ich" (I no longer want to live), not "... n3ich f bxl / m3a walidin" (live somewhere)
        r"\bma ?b(?:q|9|k)itc?h (?:bghi+t|baghi|baghia|baghya|bagha|n?bghi|9ader|qader|kader|9adra|qadra) "
        r"n(?:3|a{1,2}|e3)e?i(?:ch|sh)\b(?! (?:f|fi|m3a|m3ahom|hna|temma|b7al|bla|7da|9rib|fhad|bo7di|bou7di)\b)",
        r"\bma ?bghi+tc?h n(?:3|a{1,2}|e3)e?i(?:ch|sh)\b"
        r"(?! (?:f|fi|m3a|m3ahom|hna|temma|b7al|bla|7da|9rib|fhad|bo7di|bou7di)\b)",
        r"\bma ?b(?:q|9)a (?:3ndi|3endi|3andi|3and|3nd) (?:3lach|3lech|3la ach|lach|ma) n(?:3|a{1,2}|e3)e?i(?:ch|sh)\b",
        r"\b(?:bghit|baghi|baghya) n(?:5|kh)tafi\b|\bn(?:5|kh)tafi (?:mn|men) (?:had )?d?d(?:o|ou|u|e)n(?:i|y)a\b",
        r"\bnl(?:ou?|u)(?:7|h) ras+i\b|\bn(?:e)?rmi ras+i (?:mn|men|ta7t|f (?:lb7er|lbhar|lwad|tran|tram|metro))\b",
        r"\bkan?f(?:e|a)?k(?:e|a)?r (?:ghir )?(?:f |fi )?(?:n?m(?:o+u?|u+)t|lm(?:o+u?|u+)t|ne?(?:q|9|k)te?l ras+i|"
        r"ne?nta(?:7|h)(?:e|a)?r|l?inti(?:7|h)ar)\b(?! dyal)",
        r"\b(?:kon|ghir|ila) mt (?:a7s+e?n|khir)\b|\bl?m(?:o+u?|u+)t a7s+e?n (?:lia|li|mn had)\b",
        r"\bn(?:n)?3e?s+ w ma (?:b9itch |n)?(?:fi9|fiq|nod|noud)(?:ch)?\b"
        r"(?! (?:7ta|hta|7tta|htta|ila|l|gha|ghir|bekri|bkri)\b)",
    ],
    "self_harm": [
        # fr
        r"scarifi|automutil|\bmutil",
        r"(?:me|m) (?:faire|fais|fait|suis fait) du mal\b",
        r"\bme (?:couper|coupe|coupes|suis coupe|taillade|taillader|bruler|brule|suis brule)\b",
        r"\bme (?:frapper|frappe) (?:moi meme|la tete contre)",
        # nl
        r"zelfbeschadig|zelfverwond",
        r"mezelf (?:pijn\b|snijden|gesneden|snij|te snijden|krassen|kras|verwond|branden|slaan)",
        r"\b(?:snij|snijd|snijden|kras|krassen) (?:\w+ ){0,2}(?:mezelf|in mijn (?:armen|polsen|benen|huid))",
        # en
        r"self ?harm|\bcut(?:ting|s)? (?:my ?self|my (?:arms|wrists|legs|thighs|skin))\b",
        r"\b(?:hurt(?:ing|s)?|burn(?:ing|ed|t)?|harm(?:ing|ed)?) my ?self\b",
        r"\b(?:started|start|stop|stopped|been|keep|kept|still) cutting\b|\bcutting again\b",
        # es
        r"autolesi|(?:me he vuelto a|he vuelto a|vuelto a) cortar|\bcortarme\b|\bme corto\b|\bme he cortado\b",
        r"hacerme dano|me hago dano|me (?:lastimo|quemo)\b|lastimarme|(?:hacerme|me hago|me hice|me he hecho) cortes",
        # ar
        r"جرحت راسي|نجرح راسي|كنجرح راسي|نجرح نفسي|(?:كن|ن)قطع (?:يدي|يديا|دراعي)|نوذي راسي|اذي نفسي|اذيت نفسي",
        r"ايذاء النفس",
        r"\b(?:kan|ka|n|ghan)?j(?:e|a)?r+(?:e|a)?7t? ?(?:ras+i|n[ae]fsi|yddi|yedi|ydi|ydia|dra3i|dra3ati|rjli)\b",
        r"\b(?:kan|ka|n|ghan)?dr(?:e|a)?bt? ras+i (?:m3a|mea|f|fl) ?(?:l ?7i?e?i?t|l ?hi?t|l ?7ayt|l ?hayt)\b",
        r"\b(?:kan|ka|n)?(?:9|q)(?:e|a)?t(?:e|a)?3t? (?:f )?(?:yddi|yedi|ydi|ydia|yddia|dra3i|dra3ati|jeldi)\b",
        r"\bn(?:2|a)(?:a)?dh?i ras+i\b|\bndir (?:chi haja|chi 7aja|lmal) l ?ras+i\b",
    ],
    "violence": [
        # fr
        r"\b" + _WHO_FR + r" (?:\w+ ){0,2}(?:me|m) (?:frappe|frappent|bat|battent|tape|tapent|cogne|cognent|gifle|"
        r"giflent|etrangle|etranglent|viole|violent|menace|menacent|maltraite|maltraitent)\b",
        r"\b(?:m a|ma|mont|m ont) (?:frappe|battu|tape|cogne|gifle|etrangle|viole|menace|maltraite|pousse contre)",
        r"violences? (?:conjugale|familiale|domestique|intrafamiliale|a la maison|chez (?:moi|nous)|de mon|de ma)",
        r"(?:chez moi|a la maison|dans ma famille|mon (?:pere|copain|mari|frere)|ma (?:mere|copine|femme)) "
        r"(?:\w+ ){0,4}(?:la violence|violent)",
        r"victime de (?:violence|coups|viol)",
        r"\bje (?:me )?(?:suis|fais|fait|suis fait|suis faite) (?:\w+ )?(?:battu|battue|battre|frappe|frappee|frapper|"
        r"violee?|agresse|agressee|tabasse|tabassee)\b",
        r"menace de mort|menac\w* (?:\w+ ){0,3}(?:de me tuer|avec un couteau|au couteau)|couteau sous la gorge",
        r"(?:menace de|a dit qu il allait|a dit qu elle allait|veut|veulent|a essaye de|essaie de) (?:\w+ )?me tuer\b",
        r"peur de rentrer (?:a la maison|chez moi)|pas en securite (?:chez moi|a la maison)",
        r"mariage force|marier de force|marier contre mon gre",
        # nl
        r"\b(?:slaat|sloeg|slaan|schopt|schopte|schoppen|mishandelt|mishandelde|misbruikt|misbruikte|verkracht|"
        r"verkrachtte|wurgt|wurgde|bedreigt|bedreigde|bedreigen) (?:\w+ )?(?:mij|me)\b",
        r"\b(?:word|werd|ben|wordt) (?:\w+ ){0,3}(?:geslagen|mishandeld|misbruikt|verkracht|bedreigd|geschopt)\b",
        r"\b(?:mij|me) (?:\w+ )?(?:geslagen|mishandeld|misbruikt|verkracht|geschopt)\b",
        r"huiselijk geweld|geweld (?:thuis|in (?:ons|het|mijn) (?:gezin|huis))|thuis (?:\w+ ){0,3}geweld",
        r"(?:niet|ni|nie) veilig thuis|bang om (?:\w+ )?naar huis te gaan|met een mes (?:bedreigd|bedreigt)",
        r"uithuwelijk|gedwongen huwelijk",
        # en
        r"\b" + _WHO_EN + r" (?:\w+ ){0,2}(?:hits|beats|chokes|choked|slaps|slapped|kicks|kicked|punches|"
        r"punched|abuses|"
        r"abused|rapes|raped|strangles|strangled|threatens|threatened) (?:me|us)\b(?! out)",
        r"\b(?:hit|beaten|beat up|abused|raped|attacked|threatened) by my\b",
        r"domestic (?:violence|abuse)|abusive (?:\w+ )?(?:dad|father|mum|mom|mother|home|partner|boyfriend|husband)",
        r"not safe at home|(?:scared|afraid) to go (?:back )?home|threaten\w* to (?:kill|hurt|beat|stab)|"
        r"death threats?",
        r"(?:said|says|threatened|threatens|swore) (?:\w+ ){0,3}(?:going to|gonna|will|would|to) kill me\b",
        r"forced (?:to )?marr",
        # es
        r"\b(?:me|nos) (?:pega|pegan|pego|pegaron|maltrata|maltratan|maltrato|golpea|golpean|golpeo|amenaza|amenazan|"
        r"amenazo|viola|violo|violaron|ahorca)\b",
        r"\b(?:me ha|me han) (?:pegado|golpeado|maltratado|amenazado|violado)\b",
        r"violencia (?:domestica|machista|de genero|familiar|en (?:casa|mi casa))|\bmaltrato\b",
        r"(?:quiere|quieren|amenaza con|amenazo con|intento|ha intentado) matarme",
        r"miedo de (?:volver|ir|regresar) a casa|no estoy segur[oa] en (?:mi )?casa",
        r"matrimonio forzado|me quieren casar (?:a la fuerza|con)",
        # ar
        r"كيضربني|كتضربني|يضربني|تضربني|ضربني|ضرباتني|كيهددني|يهددني|هددني|كيعنفني|العنف الاسري|اغتصب",
        r"(?:عنف|العنف) (?:ف|في )?(?:الدار|فالدار)|بغا يقتلني|بغاو يقتلوني|خايف(?:ه)? نرجع (?:ل|لل)(?:الدار|دار)",
        # ar in Latin letters
        r"\b(?:kay|ki|katt?|kt|ky|tay|y|t)?d(?:a|e|o)?r(?:a|e|o)?b(?:ou|o|u)?ni\b|\bd(?:a|e)?rbatni\b",
        r"\b(?:kay|ki|kat|y|t)?h(?:a|e)?dd?(?:e)?d(?:ou|o)?ni\b|\b(?:kay|ki|y)?3n(?:e)?fni\b",
        r"\b(?:bgha|bghaw|bghat|ghadi|gha|ghay|baghi|bagha|baghya) (?:\w+ )?"
        r"[yt](?:9|q|k)(?:e)?t(?:e)?l(?:ni|ouni|oni)\b",
        r"\b(?:kay|ki|y)?(?:gh|8)e?t(?:a|e)?s(?:e)?b(?:ou|o)?ni\b|\bightisab\b|"
        r"\byz(?:e)?wj(?:ou|o)ni b(?:e)?s+i(?:f|ff)\b",
        r"\b(?:l ?3onf|l ?3nf|violence) (?:f|fi) ?(?:d ?dar|dar|ddar|lfamilia|l3a2ila)\b",
        r"\bkhay(?:e)?f(?:a)? n(?:e)?rj(?:e)?3 (?:l ?d?dar|l dar)\b",
    ],
    "homeless": [
        # fr
        r"\b(?:suis|chui|jsuis|retrouve|retrouver|etre|on est|sommes|me voila) (?:\w+ ){0,2}a la rue\b",
        r"\b(?:dors|dormir|dormirai|dormi|dort|dormons|dormais|passer la nuit|passe la nuit) (?:\w+ )?"
        r"(?:dehors|dans la rue|dans (?:un|le) parc|dans (?:une|la|ma) voiture|a la gare|dans (?:le|la) (?:metro|gare)|"
        r"sous un pont)",
        r"plus de toit|sans (?:toit|abri|domicile)|\bsdf\b",
        r"nulle part (?:ou|pour|a) (?:dormir|aller|loger)|(?:sais|sait|jsais|sai) (?:pas|plus) ou (?:dormir|"
        r"aller ce soir)",
        r"pas (?:d endroit|de place|de logement) (?:ou|pour) dormir|ou dormir ce soir",
        r"(?:mis|mise|jete|jetee|foutu|foutue|vire|viree) (?:\w+ )?dehors|a la porte de chez|expulse\w* (?:de|du) "
        r"(?:mon|notre|chez|l appart|logement)",
        # nl
        r"\b(?:sta|staan|slaap|slapen|sliep|leef|leven|woon|wonen|beland|kom|zit) (?:\w+ ){0,2}op straat\b",
        r"op straat gezet|buiten ?gegooid|buiten ?gezet|uit huis (?:gezet|gegooid|geschopt)",
        r"(?:slaap|slapen|sliep|geslapen) (?:\w+ ){0,3}(?:buiten|in (?:het|een) park|in (?:de|mijn|een) auto|"
        r"in het station)",
        r"nergens (?:om )?(?:te )?(?:slapen|overnachten)|geen (?:plek|plaats|slaapplaats|dak) (?:\w+ )?"
        r"(?:om te slapen|om te overnachten|boven mijn hoofd)|geen slaapplaats|dakloos",
        r"weet (?:niet|ni|nie) waar ik (?:\w+ )?(?:moet |kan )?(?:slapen|overnachten)",
        # en
        r"nowhere to (?:sleep|stay|go tonight|live)|no (?:place|where) to (?:sleep|stay)|homeless|\bevicted\b",
        r"\b(?:sleep|sleeping|slept|living|live|im|i m|am|been) (?:\w+ )?on the streets?\b",
        r"sleep(?:ing)? (?:outside|rough|in (?:my|a|the) car|in (?:the|a) park|at the station)",
        r"kicked (?:me )?out (?:of (?:the house|home|my home|my place)|by my)|(?:threw|kicked) me out\b",
        # es
        r"(?:duermo|dormir|durmiendo|dormi|vivo|viviendo|estoy|quede|quedado) (?:\w+ )?en la calle",
        r"(?:donde|a donde|sitio para|lugar para) dormir|no tengo (?:casa|techo|un techo|hogar)\b",
        r"(?:me )?(?:han|ha|hayan) echado de (?:casa|mi casa|el piso)|echad[oa] de casa|me echaron de casa",
        r"sin (?:techo|hogar)|desahucia|duermo (?:fuera|en un parque|en el coche|en la estacion)",
        # ar
        r"(?:نعس|ناعس|كنعس|نبات|كنبات|بايت|بايته|ساكن|عايش|كنعيش) (?:\S+ )?(?:ف|في )?(?:الزنقه|الشارع|المحطه)",
        r"(?:نعس|كنعس|نبات|كنبات|بايت|بايته|ساكن|عايش|كنعيش) (?:\S+ )?فالزنقه|(?:نعس|كنعس|نبات|بايت|عايش|كنعيش) "
        r"(?:\S+ )?فالشارع",
        r"فين نبات|فين نعس|فين نسكن|طردوني من الدار|جراو عليا|بلا دار|ماعنديش دار|ما عنديش دار",
        # ar in Latin letters
        r"\b(?:n3e?s+|na3es+|kan3e?s+|nbat|kanbat|bayt|bayta) (?:\w+ )?(?:f|fi) ?(?:l ?|d ?)?"
        r"(?:z{1,2}[ae]?n(?:9|q|k)a|char(?:i)?3|mo7ata|lmo7ata|m7ta|lm7ta|gare|lgare|parc|lparc|park|lpark|tomobil|"
        r"tonobil|voiture|lvoiture)\b",
        r"\b(?:sakn|sakna|3aych|3aycha|kan3i(?:ch|sh)) (?:\w+ )?(?:f|fi) ?(?:l ?|d ?)?"
        r"(?:z{1,2}[ae]?n(?:9|q|k)a|char(?:i)?3|lmo7ata|lm7ta)\b",
        r"\bfin (?:nbat|n3e?s+|nskon)\b|\bma ?3(?:e|a)?ndi(?:ch)? fin nmchi (?:had )?(?:lila|lyla|llila)\b",
        r"\b(?:t(?:e|a)?r(?:e|a)?d(?:at|ou|o|u)?ni|jr(?:a|at|aw)(?:ni| 3liya| 3lia| 3lya)|kh(?:e)?rj(?:ou|o)ni) "
        r"(?:mn|men|m) ?d?dar\b",
        r"\b(?:ana|b9it|bqit|wlit|rani) bla (?:dar|sakan|maskan|blassa fin n3es)\b",
    ],
    "poisoning": [
        # fr
        r"overdose|surdose|intoxiqu|empoisonn",
        r"(?:avale|pris|bu) (?:\w+ ){0,3}(?:tous|toutes|plein|beaucoup|trop|une boite|toute la boite|une plaquette|"
        r"toute la plaquette|tout le|\d{2,}) (?:\w+ ){0,2}" + _PILLS_FR,
        r"(?:prendre|avaler) (?:\w+ ){0,2}(?:tous|toutes|toute la boite|une boite|la boite|toute la plaquette) "
        r"(?:\w+ ){0,2}" + _PILLS_FR,
        r"(?:avale|pris|bu|boire|avaler) (?:\w+ ){0,2}(?:javel|de l eau de javel|destop|antigel|mort aux rats|"
        r"produit menager)",
        # nl
        r"overdosis|vergiftig",
        r"(?:doos|strip|heleboel|hoop|alle|veel|te veel|teveel|\d{2,}) (?:\w+ ){0,2}"
        + _PILLS_NL
        + r" (?:\w+ )?(?:genomen|geslikt|ingenomen|gepakt)",
        r"(?:hele doos|alle|strip) (?:\w+ ){0,2}" + _PILLS_NL + r" (?:\w+ )?(?:innemen|nemen|slikken)",
        r"bleekwater (?:\w+ )?(?:gedronken|ingeslikt|geslikt|drinken)",
        # en
        r"overdos|\bod(?: d|ed)\b|poison(?:ed|ing)? (?:my ?self|me)\b|been poisoned",
        r"(?:took|taken|swallowed|popped|downed|ate|take|swallow) (?:\w+ ){0,2}(?:a lot of|lots of|too many|"
        r"all (?:my|the|of my)|"
        r"(?:a )?(?:whole )?(?:box|bottle|pack|packet|strip) of|a bunch of|loads of|a handful of|\d{2,}) (?:\w+ )?"
        + _PILLS_EN,
        r"(?:drank|swallowed|drink|drinking|swallow) (?:some )?(?:bleach|poison|antifreeze)",
        # es
        r"sobredosis|envenen",
        r"(?:tome|tomado|trague|tragado|tomarme|tragarme|me he tomado|me tome) (?:\w+ ){0,2}(?:muchas|todas|"
        r"un monton de|una caja|un bote|demasiadas|un blister|\d{2,}) (?:\w+ ){0,2}" + _PILLS_ES,
        r"tomarmelas todas|(?:bebi|bebio|bebido|tomado|tomo|trague|trago|tragado) (?:\w+ )?lejia",
        # ar
        r"دوا بزاف|(?:الدوا|دوا|كاشيات|الكاشيات|حبوب|الحبوب) (?:\S+ )?(?:كامل|كاملين|كلهم|قاع|گاع)",
        r"(?:شربت|بلعت|كليت) (?:\S+ )?(?:جافيل|الجافيل|ماء جافيل)|حبوب بزاف|كاشيات بزاف|جرعه زايده|تسممت",
        # ar in Latin letters
        r"\b(?:l?dwa|l?7bob|l?7bub|cachet\w*) (?:\w+ )?(?:bzaf|kaml|kamlin|kolhom|ga3)\b",
        r"\b(?:chrebt|chribt|bl3t|bla3t|nchreb|nchrb|nbl3|nebla3) (?:\w+ )?(?:l?javel|jafil)\b",
        r"\b(?:chrebt|chribt|chrbt|nchreb|nchrb|bl3t|bla3t|nbl3|nebla3|klit|nakol|khdit|nakhod) (?:\w+ ){0,2}"
        r"(?:ga3|kamlin|kolhom|bzaf(?: d| dyal)?|la boite|boite|plaquette) (?:d |dyal |d l )?l?"
        r"(?:dwa|7bob|7bub|7bobat|cachet\w*|medoc\w*|medicament\w*|pilul\w*)\b",
    ],
}

# Everyday hyperbole and ordinary uses of alarming words, taken out before the kinds are matched.
EVERYDAY: Final = [
    # fr
    r"(?:mort|morte|morts|mourir|meurs|meurt|creve|crever|crevee) (?:de|d) (?:rire|honte|fatigue|faim|soif|chaud|"
    r"froid|ennui|peur|envie|stress|impatience|jalousie)",
    r"\bmdr\b|\bptdr\b",
    r"(?:va|vas|vont|veut) me tuer (?:si|quand|s il|s ils)\b|me tuer a la tache|\btu (?:vas )?me tues?\b",
    r"(?:ca|ce \w+|cette \w+|ces \w+|cet \w+) me tue\b|me tue a (?:dire|repeter|le dire)",
    r"en finir (?:avec|de) (?:ce|cet|cette|ces|le|la|les|mon|ma|mes|l)\b(?! vie)",
    r"disparaitre sous (?:terre|la table)|(?:tout|toute ma \w+) foutre en l air",
    r"(?:completement|totalement|grave|trop|un peu|vraiment) a la rue|a la rue (?:en|niveau|pour|sur) "
    r"(?:math\w*|francais|anglais|neerlandais|nl|info\w*|cours|compta|physique|chimie|sport|orthographe|grammaire|"
    r"l exam\w*|les exam\w*|mon exam\w*|le test)",
    r"a la rue (?:neuve|haute|royale|blaes|dansaert|du|des|de(?! nouveau))\b",
    r"me (?:couper|coupe|suis coupe|fais couper|faire couper) (?:\w+ ){0,2}(?:cheveux|barbe|ongles|frange|parole|"
    r"doigt|en cuisinant)|couper la parole",
    r"\bje me (?:tape|bats?)\b|me bat (?:\w+ )?(?:a|au|aux) |m a battu (?:\w+ )?(?:a|au|aux) |(?:tape|"
    r"tapent) sur les nerfs|"
    r"me tape (?:un|une|des|le|la|dans l oeil) |tape dans l oeil",
    r"me fait (?:du )?mal (?:de|au coeur)|ca me fait (?:du )?mal",
    r"(?:me|m)(?: a| ont)? menace\w* de (?:me )?(?:virer|licencier|renvoyer|sanction\w*|couper|exclure|radier|retirer)",
    r"(?:vire|viree|mis|mise) (?:a la porte |dehors )?(?:du|de mon|de la) (?:boulot|taf|travail|job|cours|classe|"
    r"stage)",
    r"(?:travailler|bosser|job|benevol\w*|aider|formation) (?:\w+ ){0,2}(?:avec|aux|pour) (?:les |des )?"
    r"(?:sans abri|sdf|personnes sans abri)",
    r"intoxication alimentaire|empoisonne (?:la|ma|sa) vie|m empoisonne",
    # nl
    r"dood van (?:de|het) \w+|(?:me|mij) (?:\w+ )?dood (?:lachen|schamen|vervelen)|lach (?:me|mij) dood|doodmoe|"
    r"doodziek",
    r"(?:slaat|maakt) (?:mij|me) dood als|slaat (?:\w+ )?op (?:mij|me)\b|springen van (?:vreugde|blijdschap|geluk)",
    r"op straat (?:te wachten|op (?:je|jou|mijn|de bus|de tram))",
    r"bedreig\w* (?:mij |me )?met (?:ontslag|sancties|schorsing)|verdwijnen uit (?:deze|die|dit|de|het|"
    r"mijn) (?!wereld)",
    r"voedselvergiftig",
    # en
    r"\bkill(?:ing)? (?:for|it)\b|\bkilling me\b|\bkill(?:ing)? time\b|\bto die for\b|dying (?:to|for|of)\b",
    r"(?:die|died|dying|dead) (?:of|from) (?:embarrassment|shame|laughing|laughter|boredom|cringe|hunger)|"
    r"(?:die|died|dying|dead) laughing",
    r"(?:^|\bit |\bthat |\bwell )beats me\b|\bbeat me (?:\w+ )?(?:at|in|to)\b|\bhit me up\b|"
    r"\bhits me (?:different|hard)\b",
    r"\b(?:hurt|burnt|burned|cut) my ?self (?:at|while|playing|during|lifting|in the|cooking|shaving)",
    r"end(?:ing)? (?:it|things) with (?:him|her|my)",
    r"(?:work|working|volunteer\w*|job|jobs) (?:\w+ ){0,2}(?:with|for|at) (?:the |a )?homeless",
    r"food poisoning",
    # es
    r"(?:me muero|muero|morirme|morir|muriendo|murio|me mori|me voy a morir|me quiero morir) (?:de|del) (?:\w+ )?"
    r"(?:ganas|risa|hambre|sueno|calor|frio|verguenza|aburrimiento|envidia|nervios|cansancio|sed|asco)",
    r"me mato (?:a trabajar|a estudiar|estudiando|trabajando)|matar el tiempo",
    r"(?:me|se me) pega(?:n)? (?:el sol|la cancion|el tema|la musica|el acento)|se me pega|me pego un (?:susto|grito)",
    r"me (?:corto|cortare|voy a cortar|he cortado|cortar) (?:el|la|las|los) (?:pelo|unas|barba|flequillo|dedo)",
    r"me hice dano (?:en el|jugando|entrenando)|amenaza\w* con (?:despedir\w*|echarme del (?:trabajo|curso)|"
    r"sancion\w*|quitarme)",
    r"(?:donde|a donde) dormir (?:en bruselas )?(?:barato|por poco)|en la calle (?:esperando|con mis amigos|"
    r"de compras)",
    r"(?:trabajar|trabajo|voluntari\w*|ayudar) (?:\w+ ){0,2}(?:con|a) (?:personas |gente )?sin (?:hogar|techo)",
    r"intoxicacion alimentaria",
    # ar
    r"نموت (?:ب|بال)(?:الضحك|ضحك|الجوع|جوع)|نموت بالضحك|مت (?:ب|بال)(?:الضحك|ضحك)|مت بالضحك|كنموت عليك",
    r"ضربني (?:البرد|الضو|الشمس|الحال)|تسممت من (?:الماكله|الاكل)",
    r"\bn?mo+u?t (?:b|bl|b l) ?(?:d7k|dhk|de7k|jo3|ji3a)\b|\bmt b ?d7k\b|\bdrbni (?:lbrd|lberd|l brd)\b",
    r"\bn?m(?:o+u?|u+)t (?:b|bl|b l|mn|men|m) ?(?:l ?)?(?:d7k|d7ek|dhk|jou3|jo3|7chouma|7choma|3ta?ch|brd|berd|"
    r"s+khana|7ar+|dde?s+ara|malal|tmeghnin|tkhmam)\b|\b(?:kan|ka)?n?m(?:o+u?|u+)t 3l(?:ik|ih|iha|ihom)\b",
    r"\b(?:ne?|ka?n)?(?:9|q|k)t(?:e)?lt? ras+i (?:b|bl|b l|f|fl|f l|m3a) ?(?:l ?)?(?:khedma|khdma|5edma|5dma|9raya|"
    r"qraya|taf|boulot|travail|revision|exam\w*|sport|salle|d7k|tekhmam|tkhmam)\b",
    r"\b[yt](?:9|q|k)(?:e)?t(?:e)?l(?:ni|ouni) (?:ila|mnin)\b",
    r"\bd(?:a|e)?r(?:e|a)?b(?:at)?ni (?:l ?br(?:e)?d|l ?berd|l ?7al|ch+ems|chmech|ddo|lddo|tilifoun|telephone|"
    r"coup de fil|phone|call)\b|\bdrbat (?:lia|li) (?:tilifoun|telephone)\b",
]

_KIND_RES: Final = {kind: re.compile("|".join(f"(?:{p})" for p in patterns)) for kind, patterns in PATTERNS.items()}
_EVERYDAY_RE: Final = re.compile("|".join(f"(?:{p})" for p in EVERYDAY))
_ARABIC: Final = str.maketrans({"ة": "ه", "ى": "ي", "ـ": None, "أ": "ا", "إ": "ا", "آ": "ا", "ؤ": "و", "ئ": "ي"})
_REPEATS: Final = re.compile(r"(\w)\1{2,}")


def normalise(text: str) -> str:
    """Lower case, no accents, one form of each Arabic letter, words separated by single spaces."""
    flat = unicodedata.normalize("NFC", fold(text)).translate(_ARABIC)
    return " ".join(re.sub(r"[\W_]+", " ", flat).split())


def _variants(text: str) -> set[str]:
    """The text, and with letters repeated for emphasis cut to one and to two ("mourirrr", "rasssi")."""
    return {text, _REPEATS.sub(r"\1", text), _REPEATS.sub(r"\1\1", text)}


def distress_kinds(text: str | None) -> frozenset[str]:
    """The kinds of distress a message speaks of (suicide, self_harm, violence, homeless, poisoning); empty if none."""
    if not text:
        return frozenset()
    found: set[str] = set()
    for variant in _variants(normalise(text)):
        plain = f" {_EVERYDAY_RE.sub(' | ', variant)} "
        found.update(kind for kind, pattern in _KIND_RES.items() if pattern.search(plain))
    return frozenset(found)


def sounds_like_distress(text: str | None) -> bool:
    """True when the message contains words of distress in one of our languages."""
    return bool(distress_kinds(text))
